"""``--backend ray``: the same trials, scheduled by Ray over one machine or a cluster.

Each trial is one Ray task that launches the SAME subprocess command as the local pool (same
argv, same environment protocol: trial id + result file, ``CUDA_VISIBLE_DEVICES`` from the GPU
Ray assigned to the task, ``AUTOFT_CPU_SLOTS`` sized to the task's CPU share), waits for it
with the trial timeout, and returns the log text and the reported score. The head writes them
into ``round<k>/log-<idx>.info`` and the result file, then classifies the trial exactly as the
local pool does (``runner.classify``), so the search loop, journal, resume and failure isolation
are shared. Models are written by the trial where it runs: multi-node searches need
``output_dir`` on a shared filesystem for populationbased warm starts and ``best_model/``;
a trial whose model dir is not visible on the head gets a note saying so.

Ray is optional (``pip install 'autoft[ray]'``) and imported only here, only for this backend.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from autoft import atomic
from autoft.errors import AutoftError
from autoft.report import INTERMEDIATE_FILE_ENV, RESULT_FILE_ENV, TRIAL_ID_ENV
from autoft.runtime import CPU_SLOTS_ENV, usable_cores
from autoft.tuner.procs import TERM_GRACE_SECONDS, end_group, interrupts_deferred, signal_group
from autoft.tuner.records import (
    FAILED,
    OK,
    RunningTrial,
    TrialOutcome,
    TrialSpec,
    classify,
    log_header,
    read_score,
)
from autoft.tuner.runner import intermediate_of

RAY_MISSING = ("--backend ray needs the ray package, which is not installed ({exc}): pip install 'autoft[ray]' "
               "(on the head and on every node of the cluster), or use the default --backend local")
RAY_AUTH_HINT = (
    "--ray_address {address}: the Ray cluster requires token authentication and this tuner has no matching "
    "token ({exc}). Ray 2.5x+ enables it by default: run the tuner with RAY_AUTH_MODE=token and the cluster's "
    "token (RAY_AUTH_TOKEN=<token>, or the file ~/.ray/auth_token copied from the head, where "
    "`ray get-auth-token` prints it); or start the cluster with RAY_AUTH_MODE=disabled on every node")
# How long the tuner waits for a cluster's address to answer before giving up.
CONNECT_TIMEOUT_SECONDS = 30.0
# A trial's log is sent back to the head through Ray's object store; a runaway log keeps its tail.
MAX_LOG_BYTES = 64 * 1024 * 1024


def import_ray():
    """``import ray``, or AutoftError telling how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise AutoftError(RAY_MISSING.format(exc=exc)) from None
    return ray


# ---- runs on a Ray worker ------------------------------------------------------------------------
def run_trial_on_worker(spec: Dict[str, Any], gpu: bool, cpu_share: float, pass_env: Dict[str, str],
                        timeout: Optional[float], cwd: Optional[str]) -> Dict[str, Any]:
    """Launch one trial's command on this node and wait for it; returns what the head needs.

    Returns {"returncode", "timed_out", "score", "log" (bytes), "seconds", "where", "devices",
    "launch_error"}. The child gets its own process group (killed whole on timeout or when Ray
    cancels the task) and dies with this worker (PR_SET_PDEATHSIG) if the worker is killed.
    """
    import ray

    where = f"ray:{socket.gethostname()}"
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)  # Ray sets it per worker; the trial sizes itself from AUTOFT_CPU_SLOTS
    if gpu:
        ids = [str(g) for g in ray.get_gpu_ids()]
        devices = {"CUDA_VISIBLE_DEVICES": ",".join(ids)}
        where += f"/gpu{','.join(ids)}"
    else:
        devices = {"CUDA_VISIBLE_DEVICES": ""}
        if "OMP_NUM_THREADS" not in pass_env:
            # threads = cores // slots in the trial (autoft.runtime), so this gives it ~cpu_share threads.
            devices[CPU_SLOTS_ENV] = str(max(1, round(usable_cores() / max(cpu_share, 1e-4))))
        where += f"/cpu{cpu_share:g}"
    env.update(pass_env)
    env.update(devices)
    env.setdefault("PYTHONUNBUFFERED", "1")
    scratch = tempfile.mkdtemp(prefix="autoft-trial-")
    result_file = os.path.join(scratch, "result.txt")
    env[TRIAL_ID_ENV] = spec["trial_id"]
    env[RESULT_FILE_ENV] = result_file
    log_path = _worker_log_path(spec["log_path"], scratch, append=spec.get("relaunch", False))
    if spec.get("intermediate_file"):
        env[INTERMEDIATE_FILE_ENV] = _worker_writable(spec["intermediate_file"], scratch, "intermediate.txt")
    out: Dict[str, Any] = {"returncode": None, "timed_out": False, "score": None, "log": b"", "seconds": 0.0,
                           "where": where, "host": socket.gethostname(), "devices": devices, "launch_error": ""}
    header = log_header(TrialSpec(spec["number"], spec["round"], spec["idx"], spec["argv"], Path(spec["log_path"]),
                                  Path(spec["model_dir"]), Path(result_file), spec["trial_id"],
                                  relaunch=spec.get("relaunch", False)), where, devices)
    started = time.monotonic()
    proc = None
    try:
        with open(log_path, "ab" if spec.get("relaunch") else "wb") as log:
            log.write(header)
            log.flush()
            try:
                proc = subprocess.Popen(
                    spec["argv"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    cwd=cwd if cwd and os.path.isdir(cwd) else None, start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                out["launch_error"] = f"could not start the trial on {where}: {exc}"
            deadline = started + timeout if timeout else None
            stop_file = spec.get("stop_file")
            while proc is not None and proc.poll() is None:
                if stop_file and os.path.exists(stop_file):
                    break  # stop_trial's marker (same machine or shared filesystem): ended below
                # Short waits: Ray's cancel arrives as a KeyboardInterrupt between them.
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                try:
                    proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.monotonic() >= deadline:
                        out["timed_out"] = True
                        signal_group(proc.pid, signal.SIGKILL)
                        proc.wait()
            if proc is not None:
                end_group(proc.pid)  # what the trial spawned must not outlive it (a stopped trial: it too)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=TERM_GRACE_SECONDS)
        out["seconds"] = time.monotonic() - started
        out["returncode"] = proc.returncode if proc is not None else None
        out["score"], out["score_error"] = read_score(Path(result_file), spec["trial_id"])
        out["log"] = _read_tail(log_path, MAX_LOG_BYTES)
        return out
    except BaseException:  # cancelled by the head (Ctrl-C, stop_trial): take the trial's whole group down
        if proc is not None:
            end_group(proc.pid)
            try:
                proc.wait(timeout=TERM_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _worker_log_path(head_path: str, scratch: str, append: bool = False) -> str:
    """The trial's log goes to its real path when this node can write it (same machine or a shared
    filesystem: it can be followed live), else to a scratch file (with the first attempt's lines
    when ``append``); the head rewrites it either way."""
    path = _worker_writable(head_path, scratch, "log.info")
    if append and path != head_path:
        open(path, "wb").close()
    return path


def _worker_writable(head_path: str, scratch: str, name: str) -> str:
    """``head_path`` if this node can write it (same machine or a shared filesystem), else a
    scratch file: intermediate results written there are not seen by the head."""
    try:
        os.makedirs(os.path.dirname(head_path), exist_ok=True)
        with open(head_path, "ab"):
            pass
        return head_path
    except OSError:
        return os.path.join(scratch, name)


def _read_tail(path: str, limit: int) -> bytes:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size <= limit:
            return f.read()
        f.seek(size - limit)
        return f"# [log cut: first {size - limit} bytes dropped]\n".encode() + f.read()


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux/glibc: no parent-death signal
        return None


# Resolved at import, not in the forked child: a Ray worker has many threads, so the child must
# not dlopen (locks) between fork and exec; calling an already-resolved function is safe enough.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    # If the Ray worker is killed hard, the trial gets SIGKILL instead of running on unowned.
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


# ---- runs on the head (the tuner) ----------------------------------------------------------------
def probe_address(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """For ``host:port``: ConnectionError within ``timeout`` when nothing answers there (Ray's own
    client retries for many minutes). ``auto`` and other forms are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} within {timeout:g}s ({exc})") from None


@contextlib.contextmanager
def _stderr_held():
    """Send file descriptor 2 to a scratch file within the block (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _connect_error(exc: Exception, address: Optional[str]) -> Exception:
    """Why joining Ray failed, as one AutoftError (an unexpected exception is returned as is)."""
    text = str(exc).lower()
    if type(exc).__name__ == "AuthenticationError" or ("auth" in text and "token" in text):
        return AutoftError(RAY_AUTH_HINT.format(address=address or "(local)", exc=_first_line(exc)))
    if not isinstance(exc, (ConnectionError, RuntimeError, ValueError, TimeoutError)):
        return exc
    if address is not None and "nothing answers" not in text and os.environ.get("RAY_AUTH_MODE", "") != "token":
        # Something answers at the address, but a Ray client without a token is turned away by a
        # token cluster with nothing more than a failed connection: name the likely cause.
        return AutoftError(
            f"--ray_address {address}: the address answers but Ray could not connect ({_first_line(exc)}). "
            f"If the cluster uses token authentication (the default of `ray start` since Ray 2.5x; its log says "
            f"\"Authentication token is missing or incorrect\"), run the tuner with RAY_AUTH_MODE=token and the "
            f"cluster's token (RAY_AUTH_TOKEN=<token>, or ~/.ray/auth_token from the head: `ray get-auth-token`).")
    return AutoftError(
        f"--ray_address {address or '(local)'}: could not connect to Ray ({type(exc).__name__}: {exc}). "
        f"Start a cluster with `ray start --head` (then `--ray_address auto` on that machine, or "
        f"host:port elsewhere), or leave --ray_address out for a local Ray.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"


def _fraction(x: float) -> float:
    """Ray's resource rule: a share below 1 has 4-decimal precision, above 1 it must be whole."""
    return float(math.floor(x)) if x >= 1 else max(1e-4, math.floor(x * 1e4) / 1e4)


class RayPool:
    """The search loop's trial backend on Ray (same interface as runner.TrialPool).

    ``address`` None starts a private local Ray (one node, this machine's cores, no dashboard),
    shut down by ``close``; ``"auto"`` or ``"host:port"`` joins a running cluster (``ray start``).
    ``cpu_slots`` N: CPU trials, each reserving 1/N of the cluster's CPUs (N at a time when the
    nodes are alike); else GPU trials, each reserving 1/``trials_per_gpu`` of a GPU.
    """

    def __init__(self, address: Optional[str], cpu_slots: Optional[int], trials_per_gpu: int = 1,
                 timeout: Optional[float] = None, running_file: Optional[Path] = None, cwd: Optional[str] = None,
                 environ: Optional[Dict[str, str]] = None):
        ray = import_ray()
        self.ray = ray
        self.timeout = timeout if timeout and timeout > 0 else None
        self.running_file = running_file
        self.cwd = cwd or os.getcwd()
        env = os.environ if environ is None else environ
        # An OMP_NUM_THREADS the user set for the tuner wins in the trials, as with the local pool.
        self.pass_env = {"OMP_NUM_THREADS": env["OMP_NUM_THREADS"]} if env.get("OMP_NUM_THREADS") else {}
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
        try:
            if address is None:
                # "local": always a private instance, even when RAY_ADDRESS or a `ray start` cluster
                # (/tmp/ray/ray_current_cluster) exists; joining one is what --ray_address is for.
                ray.init(address="local", num_cpus=usable_cores(), **quiet)
                self.where = "a local Ray on this machine"
            else:
                probe_address(address)
                # Bound Ray's own connection retries (by default it can retry for many minutes).
                os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "20")
                os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", "5")
                with _stderr_held():  # its C++ client prints a warning per retry; the error below says why
                    ray.init(address=address, **quiet)
                self.where = f"the Ray cluster at {address}"
        except Exception as exc:  # noqa: BLE001 - Ray raises many types; each is explained below
            raise _connect_error(exc, address) from None
        try:
            self._plan(cpu_slots, trials_per_gpu)
        except BaseException:
            ray.shutdown()
            raise
        self._remote = ray.remote(run_trial_on_worker)
        self._refs: Dict[Any, TrialSpec] = {}
        self._submitted: Dict[int, float] = {}  # trial number -> time.time() of submission
        self._stopped: Dict[int, Tuple[str, str]] = {}  # trial number -> (status, reason) of stop_trial
        self._stop_asked: Dict[int, float] = {}  # trial number -> when stop_trial asked (until forced)

    def _plan(self, cpu_slots: Optional[int], trials_per_gpu: int) -> None:
        total = self.ray.cluster_resources()
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        node_cpus = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
        cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        if cpu_slots is not None:
            if cpus <= 0:
                raise AutoftError(f"--backend ray --cpu_slots {cpu_slots}: {self.where} has no CPU resources")
            self.gpu = False
            self.num_cpus = _fraction(min(cpus / cpu_slots, node_cpus))
            self.num_gpus = 0.0
            self._describe = (f"{self.where} ({len(nodes)} node(s), {cpus:g} CPU): CPU trials, "
                             f"num_cpus={self.num_cpus:g} each (--cpu_slots {cpu_slots})")
        else:
            if gpus <= 0:
                raise AutoftError(
                    f"--backend ray without --cpu_slots runs trials on GPUs, but {self.where} has no GPU "
                    f"({len(nodes)} node(s), {cpus:g} CPU). To run the trials on CPU, add --cpu_slots N "
                    f"(N trials at a time over the cluster)."
                )
            self.gpu = True
            self.num_cpus = 0.0  # the GPU share alone limits how many run, as --trials_per_gpu does locally
            self.num_gpus = _fraction(1.0 / trials_per_gpu)
            self._describe = (f"{self.where} ({len(nodes)} node(s), {gpus:g} GPU): GPU trials, "
                             f"num_gpus={self.num_gpus:g} each (--trials_per_gpu {trials_per_gpu})")

    # ---- TrialBackend ---------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the trials run, for the start banner."""
        return self._describe

    def run(self, specs: Sequence[TrialSpec], on_finish: Callable[[TrialOutcome], None],
            on_tick: Optional[Callable[[List[RunningTrial]], None]] = None, tick_seconds: float = 1.0) -> None:
        """Submit every spec (Ray queues what does not fit), report each as it ends, in this thread."""
        ray = self.ray
        try:
            for spec in specs:
                spec.log_path.parent.mkdir(parents=True, exist_ok=True)
                spec.result_file.unlink(missing_ok=True)
                payload = {"number": spec.number, "round": spec.round, "idx": spec.idx, "argv": list(spec.argv),
                           "log_path": str(spec.log_path.resolve()), "model_dir": str(spec.model_dir),
                           "trial_id": spec.trial_id, "relaunch": spec.relaunch,
                           "intermediate_file": str(spec.intermediate_file.resolve()) if spec.intermediate_file
                           else None, "stop_file": str(self._stop_file(spec).resolve())}
                self._stop_file(spec).unlink(missing_ok=True)
                ref = self._remote.options(
                    num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0, name=f"autoft-trial-{spec.number}",
                ).remote(payload, self.gpu, self.num_cpus, self.pass_env, self.timeout, self.cwd)
                self._refs[ref] = spec
                self._submitted[spec.number] = time.time()
            self._write_running_file()
            next_tick = time.monotonic() + tick_seconds
            while self._refs:
                # The timeout keeps Ctrl-C responsive; trials' own timeouts are enforced on the workers.
                wait = 1.0 if on_tick is None else max(0.0, min(1.0, next_tick - time.monotonic()))
                ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=wait)
                for ref in ready:
                    spec = self._refs.pop(ref)
                    outcome = self._collect(ref, spec)
                    self._write_running_file()
                    on_finish(outcome)
                if on_tick is not None and time.monotonic() >= next_tick and self._refs:
                    on_tick(self.running())
                    next_tick = time.monotonic() + tick_seconds
                self._force_stragglers()
        except BaseException:
            self.stop()
            raise

    def running(self) -> List[RunningTrial]:
        """The submitted trials not finished yet (``started`` is the submission time: Ray may
        still be queueing one), with their intermediate results so far."""
        return [RunningTrial(s.number, s.round, s.idx, self._submitted.get(s.number, 0.0), intermediate_of(s), s)
                for s in sorted(self._refs.values(), key=lambda s: s.number) if s.number not in self._stopped]

    def stop_trial(self, number: int, status: str, reason: str) -> bool:
        """Stop trial ``number``: a marker file its worker polls (same machine or a shared
        filesystem) and Ray's cancel (elsewhere) make the worker end the trial's process group
        (SIGTERM, grace, SIGKILL); a task still running TERM_GRACE_SECONDS + 5 s later is cancelled
        by force (Ray kills the worker; the trial dies with it). It finishes as (status, reason).
        False if it is not running (finished, or already being stopped). A graceful cancel alone
        was measured to go unheeded under load (the trial ran to its end)."""
        for ref, spec in self._refs.items():
            if spec.number == number and number not in self._stopped:
                self._stopped[number] = (status, reason)
                self._stop_asked[number] = time.monotonic()
                try:
                    atomic.write_bytes(self._stop_file(spec), b"stop\n")
                except OSError:
                    pass  # not writable here: Ray's cancel still reaches the worker
                self.ray.cancel(ref)
                return True
        return False

    @staticmethod
    def _stop_file(spec: TrialSpec) -> Path:
        return spec.log_path.with_name(f"stop-{spec.idx}")

    def _force_stragglers(self) -> None:
        """Force-cancel the stopped trials whose task outlived the graceful stop."""
        now = time.monotonic()
        for ref, spec in list(self._refs.items()):
            asked = self._stop_asked.get(spec.number)
            if asked is not None and now - asked > TERM_GRACE_SECONDS + 5:
                del self._stop_asked[spec.number]
                self.ray.cancel(ref, force=True)

    def stop(self) -> None:
        """Cancel every submitted trial: its task kills the trial's process group (SIGTERM, then SIGKILL)."""
        if not self._refs:
            return
        with interrupts_deferred():  # a second Ctrl-C must not skip the forced cancel
            refs = list(self._refs)
            for ref in refs:
                self.ray.cancel(ref)
            # Give the tasks the same grace as the local pool, then force.
            _, left = self.ray.wait(refs, num_returns=len(refs), timeout=TERM_GRACE_SECONDS + 2)
            for ref in left:
                self.ray.cancel(ref, force=True)
            self._refs.clear()
            self._write_running_file()

    def close(self) -> None:
        """Disconnect from Ray (and stop the local Ray this pool started)."""
        if self.ray.is_initialized():
            self.ray.shutdown()

    # ---- internals ------------------------------------------------------------------------------
    def _collect(self, ref, spec: TrialSpec) -> TrialOutcome:
        stopped = self._stopped.pop(spec.number, None)
        self._stop_asked.pop(spec.number, None)
        self._stop_file(spec).unlink(missing_ok=True)
        if stopped is not None:  # stop_trial: whatever the task returned or raised, it was stopped
            status, reason = stopped
            try:
                self.ray.get(ref, timeout=TERM_GRACE_SECONDS + 5)
            except Exception:  # noqa: BLE001 - TaskCancelledError, or the task's own end
                pass
            return TrialOutcome(spec, status, None, reason, time.time() - self._submitted.get(spec.number, time.time()),
                                "ray", intermediate=intermediate_of(spec))
        try:
            res = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # the worker or its node died, or the task failed
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            reason = f"Ray task failed ({type(exc).__name__}: {first[:300]})"
            self._write_log(spec, log_header(spec, "ray", {}) + f"# {reason}\n{exc}\n".encode())
            return TrialOutcome(spec, FAILED, None, reason, 0.0, "ray")
        self._write_log(spec, res["log"])
        if res["score"] is not None:  # the head's copy of the protocol's result file
            atomic.write_bytes(spec.result_file, f"{spec.trial_id}\t{res['score']!r}\n".encode())
        outcome = classify(spec, res["returncode"], res["timed_out"], res["score"], res["seconds"], res["where"],
                           self.timeout, launch_error=res["launch_error"], score_error=res.get("score_error", ""))
        outcome.intermediate = intermediate_of(spec)
        if outcome.status == OK and not spec.model_dir.exists() and res["host"] != socket.gethostname():
            # On this machine a missing dir just means the trial saved nothing (said at the end as usual).
            outcome.note = (f"its --saved_params_dir {spec.model_dir} is not on this machine (the trial ran on "
                            f"{res['where']}): put --output_dir on a filesystem shared by all nodes for "
                            f"populationbased warm starts and best_model/")
        return outcome

    def _write_log(self, spec: TrialSpec, data: bytes) -> None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(spec.log_path, data)

    def _write_running_file(self) -> None:
        if self.running_file is None:
            return
        entries: List[Dict[str, Any]] = [{"pid": 0, "trial": s.number, "model_dir": str(s.model_dir), "backend": "ray"}
                                         for s in self._refs.values()]
        self.running_file.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(self.running_file, json.dumps(entries).encode())
