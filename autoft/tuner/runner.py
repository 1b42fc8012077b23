"""Run trials as subprocesses on a pool of slots: the next trial starts as soon as a slot frees.

One process per trial (memory is freed between trials by construction), in its own process
group: when the trial's main process exits, for any reason, whatever it spawned is ended too
(procs.end_group), and a timeout, a stop or Ctrl-C ends the whole group. Each child gets its
own environment: the slot's device variables, the trial id, the trial's result file and its
intermediate-results file, so parallel trials cannot mix results (PaddleHub 1.4 set the id in
the parent's os.environ).

A trial is OK only if it exits 0 and reported a finite score; otherwise it is FAILED with a
reason (exit code or signal, timeout, no report, a non-numeric score), or it has the status
it was stopped with (``stop_trial``, e.g. PRUNED). Finishing is event driven (one waiter
thread per child blocks in waitpid), so the pool adds no polling delay between trials.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from autoft import atomic
from autoft.report import INTERMEDIATE_FILE_ENV, RESULT_FILE_ENV, TRIAL_ID_ENV, read_intermediate
from autoft.tuner.devices import Slot
from autoft.tuner.procs import (
    TERM_GRACE_SECONDS,
    end_group,
    end_groups,
    group_alive,
    interrupts_deferred,
    signal_group,
)
from autoft.tuner.records import (
    RunningTrial,
    TrialOutcome,
    TrialSpec,
    classify,
    log_header,
    read_score,
)

OnFinish = Callable[[TrialOutcome], None]
OnTick = Callable[[List[RunningTrial]], None]


class TrialBackend(Protocol):
    """What the search needs from where trials run: the local pool (TrialPool) or Ray (RayPool).

    ``run`` starts every spec (as many at once as there are slots; the next as soon as one
    frees), calls ``on_finish`` in the caller's thread as each one ends and returns when all
    have. With ``on_tick``, it also calls ``on_tick(running)`` in the caller's thread about
    every ``tick_seconds`` while trials run; from there (or from ``on_finish``) the caller may
    ``stop_trial(number, status, reason)``: the trial's process group is ended (SIGTERM,
    grace, SIGKILL) and it finishes with that status and reason, freeing its slot for the
    next spec at once (a trial being stopped is no longer in ``running``). On any exception (KeyboardInterrupt included) ``run`` stops the running
    trials before re-raising. ``close`` releases the backend (called once, at the end).
    """

    def describe(self) -> str: ...

    def run(self, specs: Sequence[TrialSpec], on_finish: OnFinish, on_tick: Optional[OnTick] = None,
            tick_seconds: float = 1.0) -> None: ...

    def stop_trial(self, number: int, status: str, reason: str) -> bool: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Running:
    spec: TrialSpec
    slot_index: int
    proc: subprocess.Popen
    started: float  # monotonic
    wall_started: float
    deadline: Optional[float]
    timed_out: bool = False
    ended: float = 0.0
    stopped_as: Optional[Tuple[str, str]] = None  # (status, reason) given to stop_trial
    kill_at: Optional[float] = None  # SIGKILL the group then, if a stop's SIGTERM was not enough


def intermediate_of(spec: TrialSpec) -> List[Tuple[int, float]]:
    """The (step, score) pairs a trial reported so far through AUTOFT_INTERMEDIATE_FILE."""
    if spec.intermediate_file is None:
        return []
    return read_intermediate(spec.intermediate_file, spec.trial_id)


class TrialPool:
    """Runs TrialSpecs on ``slots`` (see TrialBackend).

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

    # ---- TrialBackend -------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the trials run, for the start banner."""
        return f"{len(self.slots)} slot(s) ({', '.join(s.name for s in self.slots)})"

    def run(self, specs: Sequence[TrialSpec], on_finish: OnFinish, on_tick: Optional[OnTick] = None,
            tick_seconds: float = 1.0) -> None:
        """Run all ``specs`` in order, at most len(slots) at once (see TrialBackend).

        On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) every child's
        process group is ended and the exception propagates.
        """
        pending = list(specs)[::-1]  # pop() from the end keeps the order
        free = list(range(len(self.slots)))
        done: queue.Queue[int] = queue.Queue()
        next_tick = time.monotonic() + tick_seconds
        try:
            while pending or self._running:
                while pending and free:
                    self._launch(pending.pop(), free.pop(0), done)
                pid = self._wait_one(done, next_tick if on_tick else None)
                if pid is None:
                    if on_tick is not None and time.monotonic() >= next_tick:
                        on_tick(self.running())
                        next_tick = time.monotonic() + tick_seconds
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

    def running(self) -> List[RunningTrial]:
        """The trials running now (not those being stopped), with the intermediate results each
        reported so far."""
        return [RunningTrial(r.spec.number, r.spec.round, r.spec.idx, r.wall_started, intermediate_of(r.spec),
                             r.spec) for r in sorted(self._running.values(), key=lambda r: r.spec.number)
                if r.stopped_as is None]

    def stop_trial(self, number: int, status: str, reason: str) -> bool:
        """End running trial ``number``'s process group; it finishes as (status, reason).
        False if it is not running (finished, or already being stopped)."""
        for r in self._running.values():
            if r.spec.number == number and r.stopped_as is None:
                r.stopped_as = (status, reason)
                r.kill_at = time.monotonic() + TERM_GRACE_SECONDS
                signal_group(r.proc.pid, signal.SIGTERM)
                return True
        return False

    def stop(self) -> None:
        """End every running trial's process group (SIGTERM, grace, SIGKILL) and reap them.
        Further Ctrl-C's during this cannot skip the SIGKILL step."""
        if not self._running:
            return
        with interrupts_deferred():
            running = list(self._running.values())
            end_groups([r.proc.pid for r in running])
            for r in running:
                try:
                    r.proc.wait(timeout=TERM_GRACE_SECONDS)
                except subprocess.TimeoutExpired:  # unkillable (D state): nothing more to do
                    pass
            self._running.clear()
            self._write_running_file()

    def close(self) -> None:
        """Nothing to release: every trial is reaped by ``run`` or ``stop``."""

    # ---- internals -----------------------------------------------------------------------------
    def _launch(self, spec: TrialSpec, slot_index: int, done: queue.Queue[int]) -> None:
        slot = self.slots[slot_index]
        env = dict(self.base_env)
        env.update(slot.env)
        env[TRIAL_ID_ENV] = spec.trial_id
        env[RESULT_FILE_ENV] = str(spec.result_file)
        if spec.intermediate_file is not None:
            env[INTERMEDIATE_FILE_ENV] = str(spec.intermediate_file)
        env.setdefault("PYTHONUNBUFFERED", "1")
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.result_file.parent.mkdir(parents=True, exist_ok=True)
        spec.result_file.unlink(missing_ok=True)
        with open(spec.log_path, "ab" if spec.relaunch else "wb") as log:
            log.write(log_header(spec, slot.name, slot.env))
            log.flush()
            started = time.monotonic()
            # The CLI checked the interpreter and script exist, so an OSError here is not the user's.
            proc = subprocess.Popen(
                spec.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.cwd, start_new_session=True,
            )
        deadline = started + self.timeout if self.timeout else None
        r = _Running(spec, slot_index, proc, started, time.time(), deadline)
        self._running[proc.pid] = r
        self._write_running_file()

        def wait() -> None:
            proc.wait()
            r.ended = time.monotonic()
            end_group(proc.pid)  # the trial's children must not outlive it (GPU memory, files)
            done.put(proc.pid)

        threading.Thread(target=wait, name=f"trial-{spec.number}", daemon=True).start()

    def _wait_one(self, done: queue.Queue[int], next_tick: Optional[float]) -> Optional[int]:
        """Block until a child exits (its pid) or a deadline passes (None): a trial's timeout
        (its group is killed), a stopped trial's SIGKILL time, or the next tick."""
        now = time.monotonic()
        deadlines = [r.deadline for r in self._running.values() if r.deadline is not None and not r.timed_out]
        deadlines += [r.kill_at for r in self._running.values() if r.kill_at is not None]
        if next_tick is not None:
            deadlines.append(next_tick)
        # The cap keeps Ctrl-C responsive on platforms where a blocking get() defers signals.
        wait = min([max(0.0, d - now) for d in deadlines] + [1.0])
        try:
            return done.get(timeout=wait)
        except queue.Empty:
            now = time.monotonic()
            for r in self._running.values():
                if r.deadline is not None and not r.timed_out and now >= r.deadline and r.stopped_as is None:
                    r.timed_out = True
                    signal_group(r.proc.pid, signal.SIGKILL)
                if r.kill_at is not None and now >= r.kill_at:
                    r.kill_at = None
                    signal_group(r.proc.pid, signal.SIGKILL)
            return None

    def _outcome(self, r: _Running) -> TrialOutcome:
        seconds = (r.ended or time.monotonic()) - r.started
        slot = self.slots[r.slot_index].name
        steps = intermediate_of(r.spec)
        if r.stopped_as is not None:
            status, reason = r.stopped_as
            return TrialOutcome(r.spec, status, None, reason, seconds, slot, intermediate=steps)
        score, problem = read_score(r.spec.result_file, r.spec.trial_id)
        outcome = classify(r.spec, r.proc.returncode, r.timed_out, score, seconds, slot, self.timeout,
                           score_error=problem)
        outcome.intermediate = steps
        return outcome

    def _write_running_file(self) -> None:
        if self.running_file is None:
            return
        entries = [{"pid": r.proc.pid, "trial": r.spec.number, "model_dir": str(r.spec.model_dir)}
                   for r in self._running.values()]
        atomic.write_text(self.running_file, json.dumps(entries))


def kill_orphans(running_file: Path) -> List[int]:
    """Kill trials left running by a tuner that died (listed in ``running_file``), with their
    process groups; returns their pids.

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
            signal_group(pid, signal.SIGKILL)
            killed.append(pid)
    for pid in killed:  # wait until they are gone, so they cannot write into re-run trials' dirs
        for _ in range(200):
            if not group_alive(pid) or (_is_zombie(pid) and not _group_has_others(pid)):
                break
            time.sleep(0.05)
    return killed


def _group_has_others(pgid: int) -> bool:
    """Whether a live (non-zombie) process other than ``pgid`` itself is in group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
