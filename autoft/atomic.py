"""Writing files and directories so that a reader never sees half of one.

Everything is written to a uniquely named sibling first (same filesystem), then renamed over
the target with os.replace, which is atomic on POSIX. Parallel trials and concurrent
searches may race on the same target: each writer has its own temp name, the last rename wins,
and no reader ever sees a torn file.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, os.PathLike]


def temp_sibling(path: PathLike, kind: str = "tmp") -> Path:
    """A unique hidden name beside ``path``: ``.<name>.<kind>-<pid>-<random>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes(path: PathLike, data: bytes, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (parent directories are created).

    ``fsync``: flush the data to disk before the rename (for files a resume depends on).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: PathLike, text: str, fsync: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path: PathLike, data: Any) -> Path:
    """JSON with indent 1, UTF-8 kept readable (ensure_ascii off), unknown types via str()."""
    return write_text(path, json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")


def replace_dir(new: PathLike, target: PathLike) -> Path:
    """Rename the finished directory ``new`` to ``target``; an existing target is moved aside
    first and deleted only after the rename, so ``target`` is always either old or new."""
    new, target = Path(new), Path(target)
    if target.exists() or target.is_symlink():
        old = temp_sibling(target, "old")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
    return target


def copy_dir(src: PathLike, dst: PathLike) -> Path:
    """Replace ``dst`` by a copy of ``src`` (copied beside ``dst`` first, then renamed)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dst)
    try:
        shutil.copytree(src, tmp)
        return replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
