"""Process setup done once, before Paddle is imported, at every entry point.

Why: ``import paddle`` pins OpenMP to one thread when OMP_NUM_THREADS is unset, and the
MKL that Paddle ships picks slow generic kernels on AMD CPUs unless MKL_DEBUG_CPU_TYPE=5
(docs/performance.md: together ~2x on a BERT step). Settings the user made
explicitly always win. The first ``import paddle`` runs under paddle_import_guard (root logger kept,
thread banner dropped), and a missing Paddle is one message naming both wheels.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import logging
import os
import sys
import warnings
from typing import Optional

from autoft.errors import AutoftError

log = logging.getLogger("autoft")

# Set by the tuner in each trial's environment: how many CPU slots share this machine.
CPU_SLOTS_ENV = "AUTOFT_CPU_SLOTS"

_done: Optional[str] = None


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def threads_for(cpu_slots: Optional[int] = None, cores: Optional[int] = None) -> int:
    """Threads per process when ``cpu_slots`` processes share ``cores`` cores."""
    cores = usable_cores() if cores is None else cores
    slots = max(1, int(cpu_slots or 1))
    return max(1, cores // slots)


def setup_process(cpu_slots: Optional[int] = None, environ=None) -> str:
    """Set thread count and MKL dispatch in ``environ`` (default os.environ).

    Must run before ``import paddle``. ``cpu_slots`` defaults to $AUTOFT_CPU_SLOTS (set by
    the tuner for CPU trials). Returns the one-line summary that is also logged.
    Idempotent for os.environ.
    """
    global _done
    env = os.environ if environ is None else environ
    if environ is None and _done is not None:
        return _done
    if cpu_slots is None:
        try:
            cpu_slots = int(env.get(CPU_SLOTS_ENV, "1"))
        except ValueError:
            cpu_slots = 1
    notes = []
    if env.get("OMP_NUM_THREADS"):
        notes.append(f"threads={env['OMP_NUM_THREADS']} (OMP_NUM_THREADS set by user)")
    else:
        n = threads_for(cpu_slots)
        env["OMP_NUM_THREADS"] = str(n)
        notes.append(f"threads={n} ({usable_cores()} cores / {max(1, cpu_slots)} slot(s))")
    if "MKL_DEBUG_CPU_TYPE" in env:
        notes.append(f"MKL_DEBUG_CPU_TYPE={env['MKL_DEBUG_CPU_TYPE']} (set by user)")
    elif cpu_vendor() == "AuthenticAMD":
        env["MKL_DEBUG_CPU_TYPE"] = "5"
        notes.append("MKL_DEBUG_CPU_TYPE=5 (AMD CPU: MKL AVX2 kernels)")
    # Paddle warns about ccache on every import; it is irrelevant to users.
    warnings.filterwarnings("ignore", message=".*ccache.*")
    env.setdefault("GLOG_minloglevel", "2")
    line = "cpu setup: " + ", ".join(notes)
    if environ is None:
        _done = line
        _install_import_hook()  # the first `import paddle`, wherever it happens, is guarded
        if "paddle" in sys.modules:
            line += " (paddle was imported before setup: thread count may not apply)"
        log.info(line)
    return line


PADDLE_MISSING = (
    "Paddle is not installed in this Python ({python}). Install ONE of its two wheels (both provide the "
    "`paddle` package, so never both): CPU: `pip install paddlepaddle` (or `pip install -e '.[cpu]'`); "
    "GPU: `pip install paddlepaddle-gpu==2.6.2` from PyPI (CUDA 12; needs the system's CUDA and cuDNN), or "
    "Paddle 3.x from Paddle's own index for your CUDA version, e.g. `pip install paddlepaddle-gpu==3.2.0 "
    "-i https://www.paddlepaddle.org.cn/packages/stable/cu126/` (or `bash scripts/setup.sh --gpu`; docs/gpu.md)."
)


class PaddleNotInstalled(AutoftError, ModuleNotFoundError):
    """No ``paddle`` package: a user error (one message naming both wheels), and still an ImportError."""


def paddle_missing() -> PaddleNotInstalled:
    """The error for a Python without Paddle (errors.run_cli also turns a bare ``import paddle`` failure into it)."""
    return PaddleNotInstalled(PADDLE_MISSING.format(python=sys.executable), name="paddle")


# The two lines ``import paddle`` prints when OMP_NUM_THREADS > 1 (paddle/base/__init__.py, 2.6 to 3.3).
# Several threads are our deliberate choice (setup_process), so the banner is noise; nothing else is dropped.
_THREAD_BANNER = ("WARNING: OMP_NUM_THREADS set to ", "PLEASE USE OMP_NUM_THREADS WISELY.")


@contextlib.contextmanager
def paddle_import_guard():
    """Around the first ``import paddle``: keep the root logger and drop Paddle's thread banner.

    Why: Paddle 2.6 to 3.2 set the root logger to WARNING and give it a handler at import
    (paddle/distributed/utils/log_utils.get_logger(name="root")), 3.3 sets it to INFO with a handler;
    either way the caller's logging setup (level, handlers) is lost and every INFO line of train.py
    disappears. The root logger's level and handlers are restored exactly as they were before the
    import. Everything Paddle prints to stderr at import is passed through except the thread banner.
    """
    import zlib  # noqa: F401  Paddle 2.6 exports its own zlib: loaded first, Python's zlib would call it and crash

    root = logging.getLogger()
    level, handlers, propagate = root.level, list(root.handlers), root.propagate
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        root.propagate = propagate
        for line in captured.getvalue().splitlines():
            if not line.startswith(_THREAD_BANNER):
                print(line, file=sys.stderr)


class _GuardedLoader(importlib.abc.Loader):
    """Paddle's own loader, run under :func:`paddle_import_guard`."""

    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        # From here on the module looks like any other: its loader is Paddle's real one.
        module.__loader__ = module.__spec__.loader = self.inner
        _remove_import_hook()
        with paddle_import_guard():
            self.inner.exec_module(module)


class _PaddleImportHook(importlib.abc.MetaPathFinder):
    """Installed by setup_process(): every ``import paddle`` (e.g. autoft/model.py's) gets the guard.

    Why a hook: modules import Paddle at their top, so the first import can happen anywhere after
    setup_process(); only the top-level ``paddle`` package is touched, once (the hook leaves when
    Paddle executes). A probe such as ``importlib.util.find_spec("paddle")`` still gets None when
    Paddle is missing; the import then fails as usual and run_cli shows PADDLE_MISSING.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "paddle":
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None and spec.loader is not None:
                    spec.loader = _GuardedLoader(spec.loader)
                    return spec
        return None


def _install_import_hook() -> None:
    if "paddle" not in sys.modules and not any(isinstance(f, _PaddleImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PaddleImportHook())


def _remove_import_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _PaddleImportHook)]


def import_paddle():
    """``setup_process()`` then ``import paddle`` under :func:`paddle_import_guard`; applies the thread count.

    Raises PaddleNotInstalled (an AutoftError) with the install commands when Paddle is missing.
    """
    setup_process()
    if "paddle" not in sys.modules:
        _install_import_hook()  # also when setup_process() ran before, with paddle then imported and removed
        try:
            import paddle  # noqa: F401  (through the hook: guarded)
        except ModuleNotFoundError as exc:
            if exc.name != "paddle":
                raise
            raise paddle_missing() from None
    import paddle

    try:
        paddle.base.core.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    except Exception:  # a Paddle without this hook: the env var already applied at import
        pass
    return paddle
