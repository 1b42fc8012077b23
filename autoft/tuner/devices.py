"""Where trials run: GPU slots (``--gpu``, ``--trials_per_gpu``) or CPU slots (``--cpu_slots``).

GPUs are found without importing Paddle in the tuner (that import costs seconds and pins
threads): ``nvidia-smi -L`` first, then ``/proc/driver/nvidia/gpus``. A ``CUDA_VISIBLE_DEVICES``
set for the tuner itself narrows what counts as present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from autoft.errors import AutoftError
from autoft.runtime import CPU_SLOTS_ENV


@dataclass(frozen=True)
class Slot:
    """One place a trial can run; ``env`` is added to that trial's environment."""

    name: str
    env: Dict[str, str] = field(default_factory=dict)


def detect_gpus(environ=None) -> Tuple[List[int], str]:
    """Indices of the GPUs this process may use, and how they were found (for messages)."""
    env = os.environ if environ is None else environ
    found: Optional[List[int]] = None
    how = ""
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
            found = [int(m.group(1)) for m in re.finditer(r"^GPU (\d+):", out, re.MULTILINE)]
            how = f"`nvidia-smi -L` lists {len(found)} GPU(s)"
        except (OSError, subprocess.SubprocessError) as exc:
            how = f"`nvidia-smi -L` failed ({exc})"
    if found is None:
        proc_dir = "/proc/driver/nvidia/gpus"
        if os.path.isdir(proc_dir):
            found = list(range(len(os.listdir(proc_dir))))
            how = f"{proc_dir} lists {len(found)} GPU(s)"
        else:
            found = []
            how = "nvidia-smi is not on PATH and /proc/driver/nvidia/gpus does not exist"
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        tokens = [t.strip() for t in visible.split(",") if t.strip()]
        if all(t.lstrip("-").isdigit() for t in tokens):  # UUID lists are left to CUDA
            allowed = {int(t) for t in tokens}
            found = [g for g in found if g in allowed]
            how += f"; CUDA_VISIBLE_DEVICES={visible!r} allows {found or 'none'}"
    return found, how


def parse_gpu_flag(text: str) -> List[int]:
    """``"0,1,2"`` -> [0, 1, 2]; AutoftError for anything else."""
    try:
        ids = [int(t) for t in str(text).strip().split(",") if t.strip() != ""]
    except ValueError:
        raise AutoftError(f"--gpu: expected comma-separated GPU ids such as 0,1,2, found {text!r}") from None
    if not ids or any(i < 0 for i in ids):
        raise AutoftError(f"--gpu: expected comma-separated GPU ids such as 0,1,2, found {text!r}")
    if len(set(ids)) != len(ids):
        raise AutoftError(f"--gpu: GPU ids must not repeat (use --trials_per_gpu K to run K trials on one GPU), found {text!r}")
    return ids


def plan_slots(
    gpu: Optional[str], cpu_slots: Optional[int], trials_per_gpu: int = 1, environ=None
) -> List[Slot]:
    """The pool's slots. ``gpu`` is the --gpu text or None when not given (PaddleHub's default "0").

    CPU slots get ``CUDA_VISIBLE_DEVICES=""`` and ``AUTOFT_CPU_SLOTS=N`` (so each trial takes its
    share of the cores; not set when the user fixed OMP_NUM_THREADS). GPU slots get
    ``CUDA_VISIBLE_DEVICES=<id>``, ``trials_per_gpu`` slots per GPU. Raises AutoftError when
    --gpu names GPUs that are absent, suggesting --cpu_slots.
    """
    env = os.environ if environ is None else environ
    if trials_per_gpu < 1:
        raise AutoftError(f"--trials_per_gpu must be at least 1, found {trials_per_gpu}")
    if cpu_slots is not None:
        if gpu is not None:
            raise AutoftError(
                f"--gpu={gpu} and --cpu_slots={cpu_slots} both given: trials run either on GPUs or on CPU; drop one"
            )
        if cpu_slots < 1:
            raise AutoftError(f"--cpu_slots must be at least 1, found {cpu_slots}")
        extra = {"CUDA_VISIBLE_DEVICES": ""}
        if not env.get("OMP_NUM_THREADS"):
            extra[CPU_SLOTS_ENV] = str(cpu_slots)
        return [Slot(f"cpu{i}", dict(extra)) for i in range(cpu_slots)]
    text = "0" if gpu is None else gpu
    wanted = parse_gpu_flag(text)
    present, how = detect_gpus(env)
    absent = [g for g in wanted if g not in present]
    if absent:
        flag = f"--gpu={text}" if gpu is not None else "--gpu (default 0)"
        have = f"GPUs {','.join(map(str, present))}" if present else "no GPU"
        raise AutoftError(
            f"{flag} names GPU(s) {','.join(map(str, absent))}, but this machine has {have} ({how}). "
            f"To run the trials on CPU instead, replace --gpu with --cpu_slots N "
            f"(N trials at a time; e.g. --cpu_slots 1)."
        )
    # GPU-major interleaving: with fewer trials than slots, the trials spread over the GPUs.
    return [Slot(f"gpu{g}" + (f".{k}" if trials_per_gpu > 1 else ""), {"CUDA_VISIBLE_DEVICES": str(g)})
            for k in range(trials_per_gpu) for g in wanted]
