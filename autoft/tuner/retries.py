"""``--retries N``: which failed trials run again, and where each attempt's files go. No I/O but the log tail.

A crashed trial (non-zero exit, killed by a signal, a Ray worker or node that died) is run again
with the same hyper-parameters, up to N more times, before it is FAILED: a node that died, an
NCCL error or a full /tmp say nothing about the hyper-parameters. Not retried, because running
the same command again would end the same way or because the tuner ended it on purpose:

- a pruned trial, a trial killed by ``--trial_timeout``, a trial that exited 0 without reporting,
  a trial that reported a non-finite score, a trial that could not be launched;
- a crash whose log shows a deterministic cause: out of memory (GPU or host allocator), a usage
  error (exit code 2 and an ``error:`` line, as argparse and autoft's CLIs print), or a Python
  error in the code itself (SyntaxError, ImportError, NameError, TypeError, AttributeError as
  the last exception of the log).

Attempt 1 writes the trial's usual files (``log-<idx>.info``); attempt a >= 2 writes
``log-<idx>.attempt<a>.info`` beside it (and likewise for the result and intermediate files), so
every attempt's log is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from autoft.tuner.records import PRUNED as PRUNED_STATUS

# Kinds of failure, as the tuner classifies a finished attempt.
CRASHED = "crashed"  # non-zero exit code or killed by a signal the tuner did not send
LOST = "lost"  # the worker or node running it died (Ray)
TIMED_OUT = "timed_out"
PRUNED = "pruned"
NO_REPORT = "no_report"
BAD_SCORE = "bad_score"
LAUNCH = "launch"
RETRYABLE_KINDS = (CRASHED, LOST)

_OUT_OF_MEMORY = re.compile(
    r"out of memory|ResourceExhaustedError|\bMemoryError\b|CUBLAS_STATUS_ALLOC_FAILED|"
    r"cudaErrorMemoryAllocation|Cannot allocate memory|std::bad_alloc", re.IGNORECASE)
_USAGE_ERROR = re.compile(r"^(?:\S+: )?error: ", re.MULTILINE)
_CODE_ERROR = re.compile(
    r"^(SyntaxError|IndentationError|ImportError|ModuleNotFoundError|NameError|TypeError|AttributeError)\b")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b")


def failure_kind(status: str, reason: str) -> Tuple[str, Optional[int]]:
    """(kind, exit code or None) of a finished attempt that is not OK, from its status and the
    backend's reason (autoft.tuner.records.classify, the Ray backend)."""
    if status == PRUNED_STATUS:
        return PRUNED, None
    if reason.startswith("timed out"):
        return TIMED_OUT, None
    if reason.startswith("crashed:"):
        code = re.search(r"exit code (-?\d+)", reason)
        return CRASHED, int(code.group(1)) if code else None
    if reason.startswith("Ray task failed"):
        return LOST, None
    if reason.startswith("exited 0"):
        return NO_REPORT, None
    if reason.startswith("reported"):
        return BAD_SCORE, None
    return LAUNCH, None


@dataclass(frozen=True)
class RetryDecision:
    """Whether a failed attempt runs again, and why (shown in the console and journaled)."""

    retry: bool
    why: str


def deterministic_cause(log_tail: str, exit_code: Optional[int]) -> Optional[str]:
    """The reason a crash would repeat with the same command, as the log shows it, else None."""
    match = _OUT_OF_MEMORY.search(log_tail)
    if match:
        return f"out of memory ({match.group(0)!r} in the log)"
    if exit_code == 2 and _USAGE_ERROR.search(log_tail):
        return "a usage error (exit code 2 with an `error:` line)"
    exceptions = [line for line in log_tail.splitlines() if _EXCEPTION_LINE.match(line)]
    if exceptions:
        code = _CODE_ERROR.match(exceptions[-1])
        if code:
            return f"an error in the code ({code.group(1)})"
    return None


def decide(kind: str, attempt: int, max_retries: int, log_tail: str = "",
           exit_code: Optional[int] = None) -> RetryDecision:
    """Run attempt ``attempt + 1`` of a trial whose attempt ``attempt`` (1-based) failed with ``kind``?

    Only crashes and lost workers are retried, at most ``max_retries`` times in all, and not when
    :func:`deterministic_cause` finds the cause in ``log_tail``.
    """
    if kind not in RETRYABLE_KINDS:
        return RetryDecision(False, f"not retried: {kind.replace('_', ' ')} trials are never retried")
    if attempt > max_retries:
        return RetryDecision(False, f"not retried: {max_retries} retr{'y' if max_retries == 1 else 'ies'} "
                                    f"used (--retries {max_retries})")
    cause = deterministic_cause(log_tail, exit_code)
    if cause:
        return RetryDecision(False, f"not retried: {cause} would repeat")
    return RetryDecision(True, f"retry {attempt} of {max_retries} (--retries {max_retries})")


def attempt_path(path: Path, attempt: int) -> Path:
    """Attempt 1's file is ``path``; attempt a >= 2's is ``<stem>.attempt<a><suffix>`` beside it."""
    path = Path(path)
    if attempt <= 1:
        return path
    return path.with_name(f"{path.stem}.attempt{attempt}{path.suffix}")


def first_attempt_path(path: Path, attempt: int) -> Path:
    """The inverse of :func:`attempt_path`: attempt 1's file, given attempt ``attempt``'s."""
    path = Path(path)
    if attempt <= 1:
        return path
    return path.with_name(path.name.replace(f".attempt{attempt}", "", 1))


def journaled_attempts(journal_path: Path) -> Dict[int, int]:
    """Trial number -> the number of its failed attempts journaled as retried (``"type": "attempt"``
    lines), read up to the first line that does not parse (a torn end)."""
    counts: Dict[int, int] = {}
    try:
        lines = Path(journal_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return counts
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            break
        if isinstance(rec, dict) and rec.get("type") == "attempt":
            counts[int(rec["trial"])] = max(counts.get(int(rec["trial"]), 0), int(rec["attempt"]))
    return counts
