"""Which Paddle wheel scripts/setup.sh installs; run with the venv's python (stdlib only).

    python scripts/paddle_wheel.py [--gpu]

Prints the plan, one action a line: ``uninstall NAME...`` and/or ``install PIP-ARGS...`` (nothing
when the installed Paddle is kept); a note for the user goes to stderr. Environment:
    PADDLE        an exact requirement for the CPU wheel, e.g. paddlepaddle==2.6.2 (CI's oldest-Paddle leg)
    PADDLE_CUDA   with --gpu: the CUDA build from Paddle's own index, cu118 | cu126 (default) | cu129 ...
    PADDLE_GPU_WHEEL=pypi   with --gpu: PyPI's paddlepaddle-gpu==2.6.2 instead (CUDA 12; needs the
                  system's CUDA and cuDNN)

Why: ``paddlepaddle`` and ``paddlepaddle-gpu`` are two distributions of the same ``paddle`` package, so
pip happily installs one over the other. An installed GPU wheel is never replaced; --gpu removes a
CPU wheel before installing the GPU one.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from typing import Dict, List, Mapping, Optional, Tuple

CPU = "paddlepaddle"
GPU = "paddlepaddle-gpu"
CPU_DEFAULT = "paddlepaddle>=2.6"
GPU_PYPI = "paddlepaddle-gpu==2.6.2"
GPU_RANGE = "paddlepaddle-gpu>=3.0,<3.4"  # the 3.x versions autoft is tested against (3.3.x newest)
GPU_INDEX = "https://www.paddlepaddle.org.cn/packages/stable/{cuda}/"


def installed_paddles() -> Dict[str, str]:
    """``{distribution: version}`` for the Paddle wheels in this environment."""
    found = {}
    for name in (CPU, GPU):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _version_tuple(version: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def _cpu_wheel_ok(version: Optional[str], wanted: Optional[str]) -> bool:
    """Does the installed CPU ``version`` satisfy PADDLE (``name==X``) or the default >= 2.6?"""
    if version is None:
        return False
    if wanted:
        m = re.fullmatch(r"paddlepaddle\s*==\s*([\w.]+)", wanted.strip())
        return bool(m) and _version_tuple(version) == _version_tuple(m.group(1))
    return _version_tuple(version) >= (2, 6)


def plan(installed: Mapping[str, str], gpu: bool, env: Mapping[str, str]) -> Tuple[List[List[str]], str]:
    """The actions (``["uninstall", ...]`` / ``["install", ...pip args]``) and a note for the user."""
    have_cpu, have_gpu = installed.get(CPU), installed.get(GPU)
    if have_gpu and not (gpu and have_cpu):
        return [], f"keeping the installed {GPU} {have_gpu} (a CPU wheel would overwrite it)"
    if not gpu:
        wanted = env.get("PADDLE", "").strip() or None
        if _cpu_wheel_ok(have_cpu, wanted):
            return [], ""
        return [["install", wanted or CPU_DEFAULT]], f"installing the CPU wheel ({wanted or CPU_DEFAULT}); " \
            "on a GPU machine use `bash scripts/setup.sh --gpu` instead"
    actions: List[List[str]] = []
    if have_cpu or have_gpu:  # both present: the files of whichever came last won; start clean
        actions.append(["uninstall", *[n for n in (CPU, GPU) if installed.get(n)]])
    if env.get("PADDLE_GPU_WHEEL", "").strip().lower() == "pypi":
        actions.append(["install", GPU_PYPI])
        return actions, f"installing {GPU_PYPI} from PyPI (CUDA 12: needs the system's CUDA 12 and cuDNN)"
    cuda = env.get("PADDLE_CUDA", "").strip() or "cu126"
    index = GPU_INDEX.format(cuda=cuda)
    actions.append(["install", GPU_RANGE, "-i", index])
    return actions, f"installing {GPU_RANGE} for CUDA {cuda} from Paddle's index {index} " \
        "(PADDLE_CUDA=cu118|cu126|... picks another build; PADDLE_GPU_WHEEL=pypi takes PyPI's 2.6.2)"


def main(argv: List[str]) -> int:
    import os

    if argv not in ([], ["--gpu"]):
        print(f"usage: python scripts/paddle_wheel.py [--gpu]; found {argv}", file=sys.stderr)
        return 2
    actions, note = plan(installed_paddles(), argv == ["--gpu"], os.environ)
    if note:
        print(f"setup: {note}", file=sys.stderr)
    for action in actions:
        print(" ".join(action))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
