"""Appending a benchmark's figures to benchmarks/RESULTS.md (append only), with the machine line."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = RESULTS.parents[1]


def tool(name: str) -> str:
    """A console script of this environment (next to the interpreter), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found next to {sys.executable} or on PATH: pip install -e {ROOT}")
    return found


def versions() -> str:
    """python, paddlepaddle, numpy, cma, autoft versions and the git commit, as one line."""
    parts = [f"python {sys.version.split()[0]}"]
    for dist in ("paddlepaddle", "numpy", "cma", "optuna", "autoft"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        parts.append(f"git {commit}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(parts)


def runnable(strategies):
    """The strategies this environment can run: tpe only when Optuna is installed."""
    from importlib.util import find_spec

    return [s for s in strategies if s != "tpe" or find_spec("optuna") is not None]


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def machine_line() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"Machine: {model}, {cores} cores, {platform.system()}, python {platform.python_version()}"


def append_results(name: str, header: str, body: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(f"\n## {name} ({stamp})\n\n{header}\n\n{body}\n")
    print(f"appended to {RESULTS}")
