"""Which reader a ``--dataset`` name gets: the one place that knows every task class.

Kept apart from tasks.py (the base class and the CLUE readers) so that custom.py and demo.py,
which build on tasks.py, are imported by this module instead of lazily by their base.
"""

from __future__ import annotations

from pathlib import Path

from autoft.data.custom import CustomTask
from autoft.data.demo import DemoTask
from autoft.data.tasks import SPLITS, TASKS, Inews, Lcqmc, MissingDataError, Task, TNews, Xnli
from autoft.errors import AutoftError
from autoft.paths import data_home

_READERS = {"tnews": TNews, "lcqmc": Lcqmc, "xnli": Xnli, "inews": Inews}


def load_task(name: str, data_dir=None) -> Task:
    """The task ``name`` (case-insensitive) reading from ``data_dir``, else data_home(name).

    ``demo`` is built on first use. Raises AutoftError for an unknown name or when none of the
    task's files are there (listing the expected names and where to get them).
    """
    key = str(name).lower()
    if key not in TASKS:
        raise AutoftError(f"--dataset: expected one of {', '.join(sorted(TASKS))}, found {name!r}")
    directory = Path(data_dir).expanduser() if data_dir else data_home(key)
    if key == "demo":
        return DemoTask.open(directory)
    if key == "custom":
        return CustomTask(directory)
    task = _READERS[key](directory)
    if not any((task.data_dir / f).is_file() for f in task.expected_files()):
        raise MissingDataError(task.missing_message(SPLITS))
    return task
