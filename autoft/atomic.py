"""Writing files and directories so that a reader never sees half of one.

Everything is written to a uniquely named sibling first (same filesystem), then renamed over
the target with os.replace, which is atomic on POSIX. Parallel trials and concurrent
searches may race on the same target: each writer has its own temp name, the last rename wins,
and no reader ever sees a torn file.

What is put in place gets the modes a plain ``open``/``mkdir`` gives under the process's umask,
like its siblings: libraries write some files 0600 (safetensors' ``save_file``) and
``tempfile.mkdtemp`` makes 0700 directories, which would otherwise be published as is.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import Any, Callable, Union

PathLike = Union[str, os.PathLike]


def temp_sibling(path: PathLike, kind: str = "tmp") -> Path:
    """A unique hidden name beside ``path``: ``.<name>.<kind>-<pid>-<random>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable read is set-and-restore
    os.umask(mask)
    return mask


def apply_umask(path: PathLike) -> None:
    """Give ``path`` and, for a directory, everything under it the modes a new file (0666) or
    directory (0777) gets under the umask; a file with any execute bit stays executable."""
    mask = current_umask()

    def fix(p: str, is_dir: bool) -> None:
        mode = stat.S_IMODE(os.lstat(p).st_mode)
        base = 0o777 if is_dir or mode & 0o111 else 0o666
        if mode != base & ~mask:
            os.chmod(p, base & ~mask)

    path = Path(path)
    if path.is_symlink():
        return
    if not path.is_dir():
        fix(str(path), False)
        return
    fix(str(path), True)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                fix(os.path.join(root, name), True)
        for name in files:
            if not os.path.islink(os.path.join(root, name)):
                fix(os.path.join(root, name), False)


def write_with(path: PathLike, write: Callable[[Path], None], fsync: bool = False) -> Path:
    """Put in place atomically the file that ``write(tmp)`` writes at the temp path ``tmp``
    (parent directories are created; modes from the umask, see the module docstring).

    ``fsync``: flush the data to disk before the rename (for files a resume depends on).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: PathLike, data: bytes, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`write_with`)."""
    return write_with(path, lambda tmp: tmp.write_bytes(data), fsync)


def write_text(path: PathLike, text: str, fsync: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path: PathLike, data: Any) -> Path:
    """JSON with indent 1, UTF-8 kept readable (ensure_ascii off), unknown types via str()."""
    return write_text(path, json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")


def replace_dir(new: PathLike, target: PathLike) -> Path:
    """Rename the finished directory ``new`` to ``target``; an existing target is moved aside
    first and deleted only after the rename, so ``target`` is always either old or new.
    Modes under ``new`` are set from the umask first (see the module docstring)."""
    new, target = Path(new), Path(target)
    apply_umask(new)
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
