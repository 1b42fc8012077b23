"""VisualDL scalars, optional: the one wrapper train.py and the tuner write through.

Training and searching must never depend on VisualDL: when it is not installed (or fails to
start) a ScalarLog writes nothing and ``note`` says why. One ScalarLog is one VisualDL run
(one log directory); ``child(name)`` opens another run in a sub-directory (the tuner's
``pop_<i>`` curves), sharing the parent's fate.

    log = ScalarLog.open(ckpt / "visualdl")              # train.py: appends to what is there
    log.add("dev/accuracy", 0.81, step=120)
    log = ScalarLog.open(out / "visualization", fresh=True)   # the tuner: starts empty
    pop = [log.child(f"pop_{i}") for i in range(popsize)]
    log.add_many({"hyperparameter_tuning/lr": 1e-4, ...}, step=k + 1); log.flush()
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Mapping, Optional

log = logging.getLogger("autoft.visualdl")

INSTALL_HINT = "the visualdl package is not installed (pip install visualdl)"


class ScalarLog:
    """Scalars of one VisualDL run in ``logdir``; does nothing when ``writer`` is None."""

    def __init__(self, logdir: Path, writer=None, note: Optional[str] = None):
        self.logdir = Path(logdir)
        self.writer = writer
        self.note = note  # why nothing is written, or None

    @classmethod
    def open(cls, logdir, fresh: bool = False) -> ScalarLog:
        """A log writing into ``logdir`` (``fresh``: delete what is there first)."""
        logdir = Path(logdir)
        try:
            from visualdl import LogWriter
        except ImportError:
            return cls(logdir, note=INSTALL_HINT)
        try:
            if fresh and logdir.exists():
                shutil.rmtree(logdir)
            logdir.mkdir(parents=True, exist_ok=True)
            return cls(logdir, LogWriter(logdir=str(logdir)))
        except Exception as exc:  # a broken visualdl install must not stop the run
            log.warning("VisualDL disabled: %s", exc)
            return cls(logdir, note=f"VisualDL failed to start: {exc}")

    @classmethod
    def disabled(cls, note: str) -> ScalarLog:
        """A log that writes nothing (e.g. a tuner trial, whose curves nobody reads)."""
        return cls(Path("."), note=note)

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def child(self, name: str) -> ScalarLog:
        """Another VisualDL run in ``logdir/name`` (disabled when this one is)."""
        if self.writer is None:
            return ScalarLog(self.logdir / name, note=self.note)
        return ScalarLog.open(self.logdir / name)

    def add(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def add_many(self, scalars: Mapping[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.add(tag, value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flush and close (safe to call twice)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
