"""The search journal: ``<output_dir>/journal.jsonl``, the state that survives a crash.

Line 1 is a header (``"type": "header"``) with the search's configuration; every finished
trial appends one ``"type": "trial"`` line (flushed and fsynced before the next trial is
scheduled), and every finished round one ``"type": "round"`` line: the populationbased donors
for the next round and the model dirs --keep_models deletes (written before they are deleted,
so a resume knows them even if the tuner died mid-deletion). Strategies are deterministic for a seed, so resuming = replaying: a fresh
strategy re-asks each round, the journal's points are checked against the asks, and the
journaled rewards are told back. Nothing else needs to be stored.

A kill -9 can tear the last line; reading drops it (that trial simply re-runs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from autoft import atomic
from autoft.errors import AutoftError

JOURNAL_NAME = "journal.jsonl"
FORMAT = 1

# Header keys that decide which points are asked and how they are scored: a resumed search
# must match them. --round may grow (the strategies do not depend on the total), and the
# resources (--gpu, --cpu_slots, --trials_per_gpu, --trial_timeout, --python, --keep_models) may change.
MATCH_KEYS = ("script", "space", "popsize", "evaluator", "tuning_strategy", "seed", "options", "pruner")


def read(path: Path) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]], int]:
    """(header or None, trial records, byte length of the intact prefix) of a journal file."""
    header, trials, _, good = read_all(path)
    return header, trials, good


def read_all(path: Path) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]], Dict[int, Dict[str, Any]], int]:
    """Like ``read``, plus the round records keyed by round (the last one of a round wins)."""
    data = Path(path).read_bytes()
    header = None
    trials: List[Dict[str, Any]] = []
    rounds: Dict[int, Dict[str, Any]] = {}
    good = 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:  # torn last line: no newline yet
            break
        line = data[pos:end]
        try:
            rec = json.loads(line)
        except ValueError:
            break
        if rec.get("type") == "header" and header is None:
            header = rec
        elif rec.get("type") == "trial":
            trials.append(rec)
        elif rec.get("type") == "round":
            rounds[int(rec["round"])] = rec
        pos = end + 1
        good = pos
    return header, trials, rounds, good


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
        if good < path.stat().st_size:
            with open(path, "r+b") as f:  # drop the torn tail so appends start on a fresh line
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
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

    def append_attempt(self, record: Dict[str, Any]) -> None:
        """Append one retried attempt (``trial``, ``attempt``, ``reason``, ``log``; --retries) and fsync.
        Readers that do not know the type skip it; autoft.tuner.retries.journaled_attempts reads it."""
        self._append({"type": "attempt", **record})

    def _append(self, record: Dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
