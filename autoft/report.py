"""``report_final_result``: how a training script hands its score to the tuner.

Same name and meaning as PaddleHub 1.4's ``paddlehub.report_final_result`` (higher is
better; the tuner's reward is ``1 - score``; a trial that never reports has failed), so a
PaddleHub-style train.py only changes its import. Unlike 1.4, the trial id and the result
file travel in the child's own environment (set by the tuner per trial), so parallel
trials and concurrent searches cannot mix results. Run standalone, the score is printed.

This module imports nothing heavy: toy training scripts must not pay for Paddle.
"""

from __future__ import annotations

import math
import os
import sys

TRIAL_ID_ENV = "PaddleHub_AutoDL_Trial_ID"  # PaddleHub's name, kept
RESULT_FILE_ENV = "AUTOFT_RESULT_FILE"
INTERMEDIATE_FILE_ENV = "AUTOFT_INTERMEDIATE_FILE"


def _finite(result, what: str) -> float:
    value = float(result)
    if not math.isfinite(value):
        raise ValueError(f"{what} expects a finite number, got {result!r}")
    return value


def _append_line(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def report_final_result(result) -> None:
    """Report this trial's final score (a float, higher is better) to the tuner.

    Inside a tuner trial the line ``<trial id>\\t<score>`` is appended to the trial's result
    file and flushed to disk. Outside one it prints ``final result: <score>``. Raises
    ValueError for a value that is not a finite number (NaN would poison the search).
    """
    value = _finite(result, "report_final_result")
    trial_id = os.environ.get(TRIAL_ID_ENV)
    path = os.environ.get(RESULT_FILE_ENV)
    if not trial_id or not path:
        print(f"final result: {value!r}", file=sys.stderr)
        return
    _append_line(path, f"{trial_id}\t{value!r}\n")


def report_intermediate_result(result, step: int) -> None:
    """Report a score measured during training (same scale as the final one) at ``step``.

    ``step`` is any increasing progress count (optimizer steps, examples, epochs); the
    tuner's pruner compares trials at equal steps. Inside a tuner trial the line
    ``<trial id>\t<step>\t<score>`` is appended to the file named by
    ``AUTOFT_INTERMEDIATE_FILE`` and flushed; outside one this does nothing. Raises
    ValueError for a score that is not a finite number or a negative step.
    """
    value = _finite(result, "report_intermediate_result")
    step = int(step)
    if step < 0:
        raise ValueError(f"report_intermediate_result expects a step >= 0, got {step}")
    trial_id = os.environ.get(TRIAL_ID_ENV)
    path = os.environ.get(INTERMEDIATE_FILE_ENV)
    if trial_id and path:
        _append_line(path, f"{trial_id}\t{step}\t{value!r}\n")


def read_intermediate(path, trial_id: str) -> list:
    """``[(step, score), ...]`` reported by ``trial_id`` in ``path``, in report order.

    A torn or unparsable line (a trial killed mid-write) is skipped; a missing file is [].
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) != 3 or parts[0] != trial_id:
            continue
        try:
            step, score = int(parts[1]), float(parts[2])
        except ValueError:
            continue
        if math.isfinite(score):
            out.append((step, score))
    return out


def read_reported(path, trial_id: str):
    """The last score reported by ``trial_id`` in ``path``, or None if it never reported."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        tid, _, val = line.partition("\t")
        if tid == trial_id:
            try:
                return float(val)
            except ValueError:
                return None
    return None
