"""The tuner's types: what a trial is before it runs (TrialSpec), while it runs (RunningTrial),
how it ended (TrialOutcome) and what is kept of it (TrialRecord).

TrialRecord is the one schema of a finished trial: its JSON form is the journal's trial line
(``to_json`` / ``from_json``), and trials.csv, the summary, search.png and the Ray backend
read the same fields. Journals written before this module existed resume unchanged: every
field they lack has a default, and a non-finite score they hold becomes a FAILED trial.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

OK = "OK"
FAILED = "FAILED"
PRUNED = "PRUNED"  # stopped by the tuner while running (backend.stop_trial); not a failure of the trial
STATUSES = (OK, FAILED, PRUNED)

OUT_OF_GPU_MEMORY = "out of GPU memory"
# What Paddle (and CUDA) print when a GPU allocation fails; matched in the tail of a failed trial's log.
OOM_PATTERNS = ("ResourceExhaustedError", "Out of memory error on GPU", "out of memory", "CUDA_ERROR_OUT_OF_MEMORY")
LOG_TAIL_BYTES = 64 * 1024


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
    intermediate_file: Optional[Path] = None  # AUTOFT_INTERMEDIATE_FILE (report_intermediate_result)
    relaunch: bool = False  # --resume continues an interrupted trial: append to its log, keep its state


@dataclass
class RunningTrial:
    """What a TrialWatcher sees of a trial while it runs (``on_tick``)."""

    number: int  # the id to pass to stop_trial
    round: int
    idx: int
    started: float  # time.time() when it was launched (on Ray: submitted)
    intermediate: List[Tuple[int, float]]  # (step, score) reported so far, in report order
    spec: TrialSpec


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
    intermediate: List[Tuple[int, float]] = field(default_factory=list)


@dataclass
class TrialRecord:
    """A finished trial: one journal line, one trials.csv row.

    Paths (``log``, ``model_dir``, ``model_path`` = the populationbased donor) are stored
    relative to the output dir (older journals hold absolute ones; both are accepted).
    ``model_deleted`` (the round after which --keep_models deleted the model dir) is not
    journaled with the trial: it comes from the round lines.
    """

    round: int
    idx: int
    trial: int
    point: List[float]
    hparams: Dict[str, Any]
    status: str
    score: Optional[float] = None
    reason: str = ""
    seconds: float = 0.0
    log: str = ""
    model_dir: str = ""
    model_path: Optional[str] = None
    slot: str = ""
    saved: Optional[bool] = None  # the trial left a non-empty model dir (None: not visible here)
    note: str = ""
    log_tail: str = ""  # the last line of the log of a trial that did not succeed
    last_step: Optional[int] = None  # the last intermediate result (step, score), if any
    last_score: Optional[float] = None
    model_deleted: Optional[int] = None

    _JOURNAL_ONLY_IF_SET = ("saved", "note", "log_tail", "last_step", "last_score")

    def to_json(self) -> Dict[str, Any]:
        """The journal's trial line (without ``type``); optional fields only when set."""
        d = {"round": self.round, "idx": self.idx, "trial": self.trial, "point": self.point,
             "hparams": self.hparams, "model_path": self.model_path, "score": self.score, "status": self.status,
             "reason": self.reason, "seconds": self.seconds, "log": self.log, "model_dir": self.model_dir,
             "slot": self.slot}
        for key in self._JOURNAL_ONLY_IF_SET:
            value = getattr(self, key)
            if value not in (None, ""):
                d[key] = value
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> TrialRecord:
        """A journal line back into a record. A score that is not a finite number (a journal
        written before scores were checked) makes the trial FAILED, so no strategy is told it."""
        rec = cls(round=int(d["round"]), idx=int(d["idx"]), trial=int(d["trial"]), point=list(d["point"]),
                  hparams=dict(d["hparams"]), status=str(d["status"]), score=d.get("score"),
                  reason=str(d.get("reason") or ""), seconds=float(d.get("seconds") or 0.0),
                  log=str(d.get("log") or ""), model_dir=str(d.get("model_dir") or ""),
                  model_path=d.get("model_path"), slot=str(d.get("slot") or ""), saved=d.get("saved"),
                  note=str(d.get("note") or ""), log_tail=str(d.get("log_tail") or ""),
                  last_step=d.get("last_step"), last_score=d.get("last_score"))
        if rec.status == OK:
            problem = score_problem(rec.score)
            if problem:
                rec.status, rec.score, rec.reason = FAILED, None, problem
        elif rec.status not in STATUSES:
            rec.status = FAILED
        return rec

    @property
    def ok(self) -> bool:
        return self.status == OK


def score_problem(value: Any) -> str:
    """Why ``value`` cannot be a trial's score ('' when it is a finite number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"reported a score that is not a number ({value!r})"
    if not math.isfinite(value):
        return f"reported a non-finite score ({value!r})"
    return ""


def read_score(path: Path, trial_id: str) -> Tuple[Optional[float], str]:
    """(score, problem) from the last line of ``trial_id`` in a result file.

    (None, "") when the trial never reported; (None, why) when its last report is not a finite
    number (written past report_final_result, which refuses those)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None, ""
    for line in reversed(lines):
        tid, _, text = line.partition("\t")
        if tid != trial_id:
            continue
        try:
            value = float(text)
        except ValueError:
            return None, f"reported a score that is not a number ({text.strip()[:60]!r})"
        problem = score_problem(value)
        return (None, problem) if problem else (value, "")
    return None, ""


def _signal_name(num: int) -> str:
    import signal

    try:
        return signal.Signals(num).name
    except ValueError:
        return "unknown"


def classify(spec: TrialSpec, returncode: Optional[int], timed_out: bool, score: Optional[float], seconds: float,
             slot: str, timeout: Optional[float], launch_error: str = "", score_error: str = "") -> TrialOutcome:
    """OK only if the trial exited 0 and reported a finite score; otherwise FAILED with the reason."""
    if launch_error:
        reason = launch_error
    elif timed_out:
        reason = f"timed out after {timeout:g}s (--trial_timeout); process group killed"
    elif returncode != 0:
        rc = returncode if returncode is not None else -9
        how = f"killed by signal {-rc} ({_signal_name(-rc)})" if rc < 0 else f"exit code {rc}"
        reason = f"crashed: {how}" + (f" (after reporting {score!r})" if score is not None else "")
    elif score_error:
        reason = score_error
    elif score is None:
        reason = "exited 0 but never called report_final_result"
    else:
        return TrialOutcome(spec, OK, score, "", seconds, slot)
    return TrialOutcome(spec, FAILED, None, reason, seconds, slot)


def log_header(spec: TrialSpec, where: str, devices: Dict[str, str]) -> bytes:
    """The first two lines of a trial's log (where it runs, with its device variables, and its
    command); a relaunched trial's lines say so, below the first attempt's output."""
    dev = " ".join(f"{k}={v!r}" for k, v in devices.items())
    again = " (relaunched by --resume; the first attempt's output is above)" if spec.relaunch else ""
    return f"# autofinetune trial {spec.number} on {where} ({dev}){again}\n# {shlex.join(spec.argv)}\n".encode()


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The end of a log (at most ``limit`` bytes), '' when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def last_log_line(tail: str) -> str:
    """The last non-empty line a trial printed (the tuner's own two header lines skipped)."""
    lines = tail.splitlines()
    header = set()
    for i, line in enumerate(lines):
        if line.startswith("# autofinetune trial "):
            header |= {i, i + 1}  # "# autofinetune trial N on ..." and "# <command>"
        elif line.startswith("# [log cut"):
            header.add(i)
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i].strip()
        if line and i not in header:
            return line[:300]
    return ""


def ran_out_of_gpu_memory(tail: str) -> bool:
    """Whether a failed trial's log shows a GPU out-of-memory error (Paddle's or CUDA's words)."""
    return any(p in tail for p in OOM_PATTERNS)
