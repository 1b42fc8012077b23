"""The search journal: ``<output_dir>/journal.jsonl``, the state that survives a crash.

Line 1 is a header (``"type": "header"``) with the search's configuration; every finished
trial appends one ``"type": "trial"`` line (flushed and fsynced before the next trial is
scheduled), and every finished round one ``"type": "round"`` line: the populationbased donors
for the next round and the model dirs --keep_models deletes (written before they are deleted,
so a resume knows them even if the tuner died mid-deletion). Strategies are deterministic for a seed, so resuming = replaying: a fresh
strategy re-asks each round, the journal's points are checked against the asks, and the
journaled rewards are told back. Nothing else needs to be stored.

A kill -9 can tear the last line; reading drops it (that trial simply re-runs). A damaged line
in the middle stops --resume with its line number instead (see read_all).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from autoft import atomic, errors
from autoft.errors import AutoftError

JOURNAL_NAME = "journal.jsonl"
FORMAT = 1

# Header keys that decide which points are asked and how they are scored: a resumed search
# must match them. --round may grow (the strategies do not depend on the total), and the
# resources (--gpu, --cpu_slots, --trials_per_gpu, --trial_timeout, --python, --keep_models) may change.
MATCH_KEYS = ("script", "space", "popsize", "evaluator", "tuning_strategy", "seed", "options")
REQUIRED = {"trial": ("round", "idx", "trial", "point", "hparams", "status"), "round": ("round",)}


def read(path: Path) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]], int]:
    """(header or None, trial records, byte length of the intact prefix) of a journal file."""
    header, trials, _, good = read_all(path)
    return header, trials, good


def read_all(path: Path) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]], Dict[int, Dict[str, Any]], int]:
    """Like ``read``, plus the round records keyed by round (the last one of a round wins).

    Unparsable lines at the end (a line torn by a kill, trailing garbage) are dropped: they
    are not part of the intact prefix. An unparsable line followed by a valid record means
    the middle of the journal was damaged: AutoftError naming ``journal.jsonl:N``, nothing
    changed (a record must never be lost silently).
    """
    data = Path(path).read_bytes()
    header = None
    trials: List[Dict[str, Any]] = []
    rounds: Dict[int, Dict[str, Any]] = {}
    good = 0
    bad: Optional[Tuple[int, str]] = None  # (line number, why) of the first unparsable line
    lines = data.split(b"\n")
    pos = 0
    for number, line in enumerate(lines[:-1], start=1):  # the piece after the last newline is torn
        pos += len(line) + 1
        rec, why = _parse(line)
        if rec is None:
            bad = bad or (number, why)
            continue
        if bad is not None:
            raise AutoftError(
                f"{errors.where(path, bad[0])}: not a journal record ({bad[1]}), but valid records follow "
                f"(line {number}): the journal was damaged or edited. Nothing was changed. Repair or delete "
                f"line {bad[0]} (a trial it held runs again), then --resume; or start a new --output_dir"
            )
        if rec.get("type") == "header" and header is None:
            header = rec
        elif rec.get("type") == "trial":
            trials.append(rec)
        elif rec.get("type") == "round":
            rounds[int(rec["round"])] = rec
        good = pos
    return header, trials, rounds, good


def _parse(line: bytes) -> Tuple[Optional[Dict[str, Any]], str]:
    """(record, '') for a well-formed journal line, else (None, why)."""
    try:
        rec = json.loads(line)
    except ValueError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not isinstance(rec, dict) or rec.get("type") not in ("header", "trial", "round"):
        return None, "not an object with a type of header, trial or round"
    missing = [k for k in REQUIRED.get(rec["type"], ()) if k not in rec]
    if missing:
        return None, f"a {rec['type']} line without {', '.join(missing)}"
    return rec, ""


class Journal:
    """Append-only writer; ``append`` returns only after the line is on disk.

    ``rounds``: the round records already in the file (filled by ``resume``), keyed by round.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rounds: Dict[int, Dict[str, Any]] = {}

    @classmethod
    def create(cls, path: Path, header: Dict[str, Any]) -> Journal:
        """Start a new journal with ``header`` (written atomically)."""
        path = Path(path)
        line = json.dumps({"type": "header", "format": FORMAT, **header}, sort_keys=True) + "\n"
        atomic.write_text(path, line, fsync=True)
        return cls(path)

    @classmethod
    def resume(cls, path: Path, header: Dict[str, Any]) -> Tuple[Journal, Dict[str, Any], List[Dict[str, Any]]]:
        """Open an existing journal for appending; AutoftError if it belongs to a different search.

        Returns (journal, the stored header, finished trial records). A torn last line is cut off.
        """
        path = Path(path)
        if not path.exists():
            raise AutoftError(
                f"--resume: {path} does not exist; --output_dir must name the directory of the search to continue"
            )
        stored, trials, rounds, good = read_all(path)
        if stored is None:
            raise AutoftError(f"--resume: {path} has no header line; it is not an autofinetune journal")
        diffs = []
        for key in MATCH_KEYS:
            if key == "seed" and header.get("seed") is None:
                continue  # no --seed given: the stored one is used
            if stored.get(key) != header.get(key):
                diffs.append(f"{key}: journal {_short(stored.get(key))}, now {_short(header.get(key))}")
        if diffs:
            raise AutoftError(
                f"--resume: {path} was written by a different search ("
                + "; ".join(diffs)
                + "). Repeat the original command's script, --param_file contents, --popsize, --evaluator, "
                "--tuning_strategy, --seed and trailing options, or choose a new --output_dir."
            )
        try:
            with open(path, "r+b") as f:  # drop the torn tail so appends start on a fresh line
                if good < path.stat().st_size:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as exc:  # found now, not after the first trial ran
            raise AutoftError(f"--resume: {path} is not writable ({exc.strerror}); the tuner appends every "
                              f"finished trial to it") from None
        journal = cls(path)
        journal.rounds = rounds
        return journal, stored, trials

    def append(self, record: Dict[str, Any]) -> None:
        """Append one trial record and fsync."""
        self._append({"type": "trial", **record})

    def append_round(self, record: Dict[str, Any]) -> None:
        """Append one round record (``round``, ``donors``, optional ``deleted``...) and fsync."""
        self._append({"type": "round", **record})
        self.rounds[int(record["round"])] = {"type": "round", **record}

    def _append(self, record: Dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                # One write of the whole line: a kill leaves it whole or torn at the end, never interleaved.
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            exc.filename = exc.filename or str(self.path)
            raise


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
