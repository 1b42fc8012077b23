"""Process setup done once, before Paddle is imported, at every entry point.

Why: ``import paddle`` pins OpenMP to one thread when OMP_NUM_THREADS is unset, and the
MKL that Paddle ships picks slow generic kernels on AMD CPUs unless MKL_DEBUG_CPU_TYPE=5
(../shared/reference/paddle-cpu.md: together ~2x on a BERT step). Settings the user made
explicitly always win.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Optional

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
        if "paddle" in sys.modules:
            line += " (paddle was imported before setup: thread count may not apply)"
        log.info(line)
    return line


def import_paddle():
    """``setup_process()`` then ``import paddle``, quietly; applies the thread count.

    Paddle prints a multi-line "OMP_NUM_THREADS set to N, not 1" warning on import whenever
    more than one thread is asked for; that is our deliberate choice, so it is filtered out.
    Anything else Paddle prints at import is passed through.
    """
    setup_process()
    if "paddle" not in sys.modules:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stderr(buf):
            import paddle  # noqa: F401
        for line in buf.getvalue().splitlines():
            if "OMP_NUM_THREADS" not in line and "OpenBlas" not in line:
                print(line, file=sys.stderr)
    import paddle

    try:
        paddle.base.core.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    except Exception:  # a Paddle without this hook: the env var already applied at import
        pass
    return paddle
