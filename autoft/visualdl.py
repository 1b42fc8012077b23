"""VisualDL scalars, optional: the one wrapper train.py and the tuner write through.

Training and searching must never depend on VisualDL: when it is not installed (or fails to
start) a ScalarLog writes nothing and ``note`` says why. One ScalarLog is one VisualDL run
(one log directory); ``child(name)`` opens another run in a sub-directory (the tuner's
``pop_<i>`` curves), sharing the parent's fate.

    log = ScalarLog.open(ckpt / "visualdl", fresh=True)  # train.py starting a run
    log = ScalarLog.open(ckpt / "visualdl", resumed=True)  # train.py resuming one: no step twice
    log.add("dev/accuracy", 0.81, step=120)
    log = ScalarLog.open(out / "visualization", fresh=True)   # the tuner: starts empty
    pop = [log.child(f"pop_{i}") for i in range(popsize)]
    log.add_many({"hyperparameter_tuning/lr": 1e-4, ...}, step=k + 1); log.flush()
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Dict, Mapping, Optional

log = logging.getLogger("autoft.visualdl")

INSTALL_HINT = "the visualdl package is not installed (pip install visualdl)"


class ScalarLog:
    """Scalars of one VisualDL run in ``logdir``; does nothing when ``writer`` is None."""

    def __init__(self, logdir: Path, writer=None, note: Optional[str] = None, logged: Optional[Dict[str, int]] = None):
        self.logdir = Path(logdir)
        self.writer = writer
        self.note = note  # why nothing is written, or None
        self.logged = dict(logged or {})  # tag -> last step already in logdir: later adds up to it are left out

    @classmethod
    def open(cls, logdir, fresh: bool = False, resumed: bool = False) -> ScalarLog:
        """A log writing into ``logdir``. ``fresh``: delete what is there first. ``resumed``: an
        interrupted run goes on, so a point at a step its tag already has there (the steps between
        the last resume point and the interruption, trained again) is not written twice."""
        logdir = Path(logdir)
        try:
            from visualdl import LogWriter
        except ImportError:
            return cls(logdir, note=INSTALL_HINT)
        try:
            if fresh and logdir.exists():
                shutil.rmtree(logdir)
            logged = _logged_steps(logdir) if resumed and logdir.is_dir() else {}
            logdir.mkdir(parents=True, exist_ok=True)
            return cls(logdir, LogWriter(logdir=str(logdir)), logged=logged)
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
        if self.writer is not None and int(step) > self.logged.get(tag, -1):
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


def _logged_steps(logdir: Path) -> Dict[str, int]:
    """Per scalar tag, the last step recorded in ``logdir``'s VisualDL files ({} when unreadable:
    then nothing is left out)."""
    steps: Dict[str, int] = {}
    try:
        from visualdl import LogReader

        for path in sorted(logdir.glob("vdlrecords.*.log")):
            reader = LogReader(file_path=str(path))
            for tag in reader.get_tags().get("scalar", []):
                ids = [int(r.id) for r in reader.get_data("scalar", tag)]
                if ids:
                    steps[tag] = max(steps.get(tag, -1), *ids)
    except Exception as exc:  # an unreadable log must not stop a resumed run
        log.warning("VisualDL: could not read %s (%s); a resumed run may repeat some steps there", logdir, exc)
        return {}
    return steps
