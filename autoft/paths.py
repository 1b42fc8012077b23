"""Where autoft keeps models and data on disk (nothing is ever downloaded)."""

from __future__ import annotations

import os
from pathlib import Path


def autoft_home() -> Path:
    """``$AUTOFT_HOME``, else ``~/.autoft``."""
    env = os.environ.get("AUTOFT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".autoft"


def models_home() -> Path:
    return autoft_home() / "models"


def data_home(task: str) -> Path:
    """Default data directory of a task: ``$AUTOFT_HOME/data/<task lower-case>``."""
    return autoft_home() / "data" / task.lower()
