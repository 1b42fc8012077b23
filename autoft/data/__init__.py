"""Data: task readers, the demo set, features (tokenize + cache + batches), submissions.

Importing this package never imports Paddle; ``features.batches`` does on first use.
"""

from autoft.data.registry import load_task
from autoft.data.tasks import READER_VERSION, SPLITS, TASKS, Example, Task

__all__ = ["READER_VERSION", "SPLITS", "TASKS", "Example", "Task", "load_task"]
