"""Run trials as subprocesses on a pool of slots: the next trial starts as soon as a slot frees.

One process per trial (memory is freed between trials by construction), in its own process
group (a timeout or Ctrl-C kills the script and anything it spawned). Each child gets its own
environment: the slot's device variables, the trial id and the trial's result file, so
parallel trials cannot mix results (PaddleHub 1.4 set the id in the parent's os.environ).

A trial is OK only if it exits 0 and reported a score; otherwise it is FAILED with a reason
(exit code or signal, timeout, no report). Finishing is event driven (one waiter thread per
child blocks in waitpid), so the pool adds no polling delay between trials.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence

from autoft import atomic
from autoft.report import RESULT_FILE_ENV, TRIAL_ID_ENV, read_reported
from autoft.tuner.devices import Slot

OK = "OK"
FAILED = "FAILED"
# After SIGTERM on Ctrl-C, how long children get to exit before SIGKILL.
TERM_GRACE_SECONDS = 5.0


@dataclass
class TrialSpec:
    """Everything needed to launch one trial."""

    number: int  # global trial counter t = round * popsize + idx
    round: int
    idx: int
    argv: List[str]
    log_path: Path
    model_dir: Path
    result_file: Path
    trial_id: str


@dataclass
class TrialOutcome:
    """How a trial ended. ``score`` is None unless status is OK."""

    spec: TrialSpec
    status: str
    score: Optional[float]
    reason: str
    seconds: float
    slot: str
    note: str = ""  # a warning that does not fail the trial (e.g. its model dir is not on this machine)


class TrialBackend(Protocol):
    """What the search loop needs from where trials run: the local pool (TrialPool) or Ray (RayPool).

    ``run`` starts every spec, calls ``on_finish`` in the caller's thread as each one ends, and
    returns when all have; on any exception (KeyboardInterrupt included) it stops the running
    trials before re-raising. ``close`` releases the backend (called once, at the end).
    """

    def describe(self) -> str: ...

    def run(self, specs: Sequence[TrialSpec], on_finish: Callable[[TrialOutcome], None]) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def log_header(spec: TrialSpec, where: str, devices: Dict[str, str]) -> bytes:
    """The first two lines of a trial's log: where it runs (with its device variables) and its command."""
    dev = " ".join(f"{k}={v!r}" for k, v in devices.items())
    return f"# autofinetune trial {spec.number} on {where} ({dev})\n# {shlex.join(spec.argv)}\n".encode()


def classify(spec: TrialSpec, returncode: Optional[int], timed_out: bool, score: Optional[float], seconds: float,
             slot: str, timeout: Optional[float], launch_error: str = "") -> TrialOutcome:
    """OK only if the trial exited 0 and reported a score; otherwise FAILED with the reason."""
    if launch_error:
        reason = launch_error
    elif timed_out:
        reason = f"timed out after {timeout:g}s (--trial_timeout); process group killed"
    elif returncode != 0:
        rc = returncode if returncode is not None else -9
        how = f"killed by signal {-rc} ({_signal_name(-rc)})" if rc < 0 else f"exit code {rc}"
        reason = f"crashed: {how}" + (f" (after reporting {score!r})" if score is not None else "")
    elif score is None:
        reason = "exited 0 but never called report_final_result"
    else:
        return TrialOutcome(spec, OK, score, "", seconds, slot)
    return TrialOutcome(spec, FAILED, None, reason, seconds, slot)


@dataclass
class _Running:
    spec: TrialSpec
    slot_index: int
    proc: subprocess.Popen
    started: float
    deadline: Optional[float]
    timed_out: bool = False
    ended: float = field(default=0.0)


class TrialPool:
    """Runs TrialSpecs on ``slots``; ``run`` returns when all are done (or raises KeyboardInterrupt).

    ``running_file`` (optional) lists the live children's pids so a resumed search can kill
    the orphans of a tuner that was killed with -9.
    """

    def __init__(
        self,
        slots: Sequence[Slot],
        timeout: Optional[float] = None,
        base_env: Optional[Dict[str, str]] = None,
        running_file: Optional[Path] = None,
        cwd: Optional[str] = None,
    ):
        if not slots:
            raise ValueError("TrialPool needs at least one slot")
        self.slots = list(slots)
        self.timeout = timeout if timeout and timeout > 0 else None
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.running_file = running_file
        self.cwd = cwd
        self._running: Dict[int, _Running] = {}  # keyed by pid

    # ---- public ---------------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the trials run, for the start banner."""
        return f"{len(self.slots)} slot(s) ({', '.join(s.name for s in self.slots)})"

    def run(self, specs: Sequence[TrialSpec], on_finish: Callable[[TrialOutcome], None]) -> None:
        """Run all ``specs`` in order, at most len(slots) at once; ``on_finish`` is called in this thread.

        On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) every child's
        process group gets SIGTERM, then SIGKILL after a grace period, and the exception propagates.
        """
        pending = list(specs)[::-1]  # pop() from the end keeps the order
        free = list(range(len(self.slots)))
        done: queue.Queue[int] = queue.Queue()
        try:
            while pending or self._running:
                while pending and free:
                    self._launch(pending.pop(), free.pop(0), done)
                pid = self._wait_one(done)
                if pid is None:
                    continue
                r = self._running.pop(pid)
                free.append(r.slot_index)
                free.sort()
                # Refill the freed slot before the bookkeeping (journal fsync, console), so the
                # pool's own work overlaps the next trial instead of delaying it.
                while pending and free:
                    self._launch(pending.pop(), free.pop(0), done)
                self._write_running_file()
                on_finish(self._outcome(r))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate all running trials (SIGTERM to each process group, SIGKILL after a grace period)."""
        if not self._running:
            return
        for r in self._running.values():
            _signal_group(r.proc.pid, signal.SIGTERM)
        end = time.monotonic() + TERM_GRACE_SECONDS
        for r in self._running.values():
            try:
                r.proc.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(r.proc.pid, signal.SIGKILL)
        for r in self._running.values():
            try:
                r.proc.wait(timeout=TERM_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self._running.clear()
        self._write_running_file()

    # ---- internals -----------------------------------------------------------------------------
    def _launch(self, spec: TrialSpec, slot_index: int, done: queue.Queue[int]) -> None:
        slot = self.slots[slot_index]
        env = dict(self.base_env)
        env.update(slot.env)
        env[TRIAL_ID_ENV] = spec.trial_id
        env[RESULT_FILE_ENV] = str(spec.result_file)
        env.setdefault("PYTHONUNBUFFERED", "1")
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.result_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            spec.result_file.unlink()
        except FileNotFoundError:
            pass
        with open(spec.log_path, "wb") as log:
            log.write(log_header(spec, slot.name, slot.env))
            log.flush()
            started = time.monotonic()
            # The CLI checked the interpreter and script exist, so an OSError here is not the user's.
            proc = subprocess.Popen(
                spec.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.cwd, start_new_session=True,
            )
        deadline = started + self.timeout if self.timeout else None
        r = _Running(spec, slot_index, proc, started, deadline)
        self._running[proc.pid] = r
        self._write_running_file()

        def wait() -> None:
            proc.wait()
            r.ended = time.monotonic()
            done.put(proc.pid)

        threading.Thread(target=wait, name=f"trial-{spec.number}", daemon=True).start()

    def _wait_one(self, done: queue.Queue[int]) -> Optional[int]:
        """Block until a child exits (its pid) or a deadline passes (None, after killing it)."""
        now = time.monotonic()
        deadlines = [r.deadline for r in self._running.values() if r.deadline is not None and not r.timed_out]
        # The cap keeps Ctrl-C responsive on platforms where a blocking get() defers signals.
        wait = min([max(0.0, d - now) for d in deadlines] + [1.0])
        try:
            return done.get(timeout=wait)
        except queue.Empty:
            now = time.monotonic()
            for r in self._running.values():
                if r.deadline is not None and not r.timed_out and now >= r.deadline:
                    r.timed_out = True
                    _signal_group(r.proc.pid, signal.SIGKILL)
            return None

    def close(self) -> None:
        """Nothing to release: every trial is reaped by ``run`` or ``stop``."""

    def _outcome(self, r: _Running) -> TrialOutcome:
        seconds = (r.ended or time.monotonic()) - r.started
        score = read_reported(r.spec.result_file, r.spec.trial_id)
        return classify(r.spec, r.proc.returncode, r.timed_out, score, seconds, self.slots[r.slot_index].name,
                        self.timeout)

    def _write_running_file(self) -> None:
        if self.running_file is None:
            return
        entries = [{"pid": r.proc.pid, "trial": r.spec.number, "model_dir": str(r.spec.model_dir)}
                   for r in self._running.values()]
        atomic.write_text(self.running_file, json.dumps(entries))


def kill_orphans(running_file: Path) -> List[int]:
    """Kill trials left running by a tuner that died (listed in ``running_file``); returns their pids.

    A pid is only killed if its command line still mentions the trial's model dir, so a
    recycled pid of some unrelated process is left alone.
    """
    try:
        entries = json.loads(Path(running_file).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    killed = []
    for e in entries:
        pid = int(e.get("pid") or 0)  # 0: a trial on a Ray worker (Ray ends those with the driver)
        if pid <= 0:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if str(e.get("model_dir", "\0")) in cmdline:
            _signal_group(pid, signal.SIGKILL)
            killed.append(pid)
    for pid in killed:  # wait until they are gone, so they cannot write into re-run trials' dirs
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
                break
            time.sleep(0.05)
    return killed


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session=True makes pid the group id
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return "unknown"
