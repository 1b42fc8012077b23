"""One tuner per output dir: an exclusive OS lock on ``<output_dir>/.lock``, held for the tuner's life.

``flock`` is released by the kernel when the process dies, however it dies (``kill -9``
included), so nothing is ever left to clean up. A second tuner on the same dir (a new search
or a ``--resume``) is refused with the holder's pid, host and start time, which the holder
writes into the file. The file itself is never deleted (a deleted lock file could be locked
by two processes at once through two inodes).

Network filesystems: on NFSv4 (and NFSv3 with a lock manager) Linux maps flock to POSIX byte
range locks, which the server enforces across machines. Where the filesystem cannot lock
(ENOLCK, EOPNOTSUPP: some CIFS/FUSE mounts), the tuner warns and runs unlocked.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Optional

from autoft.errors import AutoftError

LOCK_NAME = ".lock"


class OutputLock:
    """The lock of one output dir; ``acquire`` raises AutoftError when another tuner holds it."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AutoftError(f"--output_dir {self.path.parent} is not writable ({exc.strerror}): choose a "
                              f"directory this user can write") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise AutoftError(
                f"--output_dir {self.path.parent} is in use by another tuner ({holder}); a second tuner (a new "
                f"search or --resume) would run the same trials into the same files. Wait for it to finish or "
                f"stop it (Ctrl-C), then --resume; or choose another --output_dir"
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            print(f"warning: cannot lock {self.path} ({exc.strerror}; a network filesystem without locking?): "
                  f"make sure no other tuner uses this --output_dir", file=sys.stderr)
        # Written in place, not through autoft.atomic: a rename would put a new, unlocked inode there.
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Unlock (closing the descriptor releases the flock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "it is starting up: no pid written yet"
