"""Where trials run: GPU slots (``--gpu``, ``--trials_per_gpu``) or CPU slots (``--cpu_slots``).

GPUs are found without importing Paddle in the tuner (that import costs seconds and pins
threads): ``nvidia-smi -L`` first, then ``/proc/driver/nvidia/gpus``.

``--gpu`` ids are what CUDA would call the GPUs inside the tuner's own process: without
``CUDA_VISIBLE_DEVICES`` they are nvidia-smi's indices; with it (as Slurm, Kubernetes or a user
set it) they are positions in that list, whose entries may be indices, GPU UUIDs or MIG UUIDs.
Each trial's ``CUDA_VISIBLE_DEVICES`` gets that list's entry, so trials stay inside the
allocation. docs/gpu.md has the full rules.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from autoft.errors import AutoftError
from autoft.runtime import CPU_SLOTS_ENV


@dataclass(frozen=True)
class Slot:
    """One place a trial can run; ``env`` is added to that trial's environment."""

    name: str
    env: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Mig:
    """A MIG instance as ``nvidia-smi -L`` lists it under its GPU."""

    profile: str  # e.g. "3g.20gb"
    uuid: str  # "MIG-…"


@dataclass(frozen=True)
class PhysicalGpu:
    """A GPU as nvidia-smi numbers it (PCI bus order); uuid/name empty when only /proc told us."""

    index: int
    uuid: str = ""
    name: str = ""
    migs: Tuple[Mig, ...] = ()


@dataclass(frozen=True)
class Gpu:
    """A GPU (or MIG instance) the tuner may hand to trials."""

    id: int  # the --gpu id: position in CUDA_VISIBLE_DEVICES, or nvidia-smi's index without it
    entry: str  # what a trial's CUDA_VISIBLE_DEVICES gets
    physical: Optional[PhysicalGpu]  # the card it is on; None when it could not be checked
    mig: Optional[Mig] = None


_GPU_LINE = re.compile(r"^GPU (\d+):\s*(.*?)\s*(?:\(UUID: (GPU-[^)\s]+)\))?\s*$")
_MIG_LINE = re.compile(r"^\s+MIG\s+(\S+)\s+Device\s+\d+:\s*\(UUID: (MIG-[^)\s]+)\)")


def parse_nvidia_smi_list(text: str) -> List[PhysicalGpu]:
    """The GPUs (with their MIG instances) in ``nvidia-smi -L`` output."""
    gpus: List[PhysicalGpu] = []
    for line in text.splitlines():
        m = _GPU_LINE.match(line)
        if m:
            gpus.append(PhysicalGpu(int(m.group(1)), m.group(3) or "", m.group(2)))
            continue
        m = _MIG_LINE.match(line)
        if m and gpus:
            last = gpus[-1]
            gpus[-1] = PhysicalGpu(last.index, last.uuid, last.name, last.migs + (Mig(m.group(1), m.group(2)),))
    return gpus


def nvidia_smi(args: Sequence[str], env) -> Tuple[Optional[str], str]:
    """stdout of ``nvidia-smi ARGS`` (None when it is absent or fails) and a note for messages."""
    smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    shown = "`nvidia-smi " + " ".join(args) + "`"
    if not smi:
        return None, "nvidia-smi is not on PATH"
    try:
        proc = subprocess.run([smi, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{shown} failed ({exc})"
    if proc.returncode != 0:
        return None, f"{shown} failed (exit code {proc.returncode}: {proc.stderr.strip()[:200]})"
    return proc.stdout, shown


def physical_gpus(environ=None) -> Tuple[List[PhysicalGpu], str]:
    """All GPUs of this machine as nvidia-smi numbers them, and how they were found (for messages)."""
    env = os.environ if environ is None else environ
    out, how = nvidia_smi(["-L"], env)
    if out is not None:
        found = parse_nvidia_smi_list(out)
        return found, f"{how} lists {len(found)} GPU(s)"
    proc_dir = "/proc/driver/nvidia/gpus"
    if os.path.isdir(proc_dir):
        found = [PhysicalGpu(i) for i in range(len(os.listdir(proc_dir)))]
        return found, f"{how}; {proc_dir} lists {len(found)} GPU(s)"
    return [], f"{how} and {proc_dir} does not exist"


def resolve_entry(token: str, physical: Sequence[PhysicalGpu]) -> Optional[Tuple[Optional[PhysicalGpu], Optional[Mig]]]:
    """The card (and MIG instance) a CUDA_VISIBLE_DEVICES entry names; None when it names nothing here.

    Indices follow nvidia-smi (trials get CUDA_DEVICE_ORDER=PCI_BUS_ID). UUIDs may be a unique
    prefix, as CUDA allows. When only /proc listed the GPUs (no UUIDs known), a UUID is taken on
    trust as ``(None, None)``.
    """
    if token.isdigit():
        return next(((p, None) for p in physical if p.index == int(token)), None)
    if not token.startswith(("GPU-", "MIG-")) or not physical:
        return None
    if not any(p.uuid for p in physical):
        return None, None
    if token.startswith("GPU-"):
        hits = [p for p in physical if p.uuid.startswith(token)]
        return (hits[0], None) if len(hits) == 1 else None
    for p in physical:
        for mig in p.migs:
            if mig.uuid.startswith(token):
                return p, mig
        if p.uuid and token.startswith(f"MIG-{p.uuid}/"):  # CUDA 11.0-11.3 naming: MIG-GPU-<uuid>/<gi>/<ci>
            return p, None
    return None


def visible_gpus(environ=None) -> Tuple[List[Gpu], str]:
    """The GPUs ``--gpu`` ids refer to (id = position), and how they were found (for messages).

    With ``CUDA_VISIBLE_DEVICES`` set, its entries in order up to the first one that names no GPU
    here (CUDA ignores that entry and all after it); without it, every GPU nvidia-smi lists.
    """
    env = os.environ if environ is None else environ
    physical, how = physical_gpus(env)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [Gpu(p.index, str(p.index), p) for p in physical], how
    gpus: List[Gpu] = []
    for token in (t.strip() for t in visible.split(",")):
        hit = resolve_entry(token, physical) if token else None
        if hit is None:
            if token or visible.strip():
                how += f"; CUDA_VISIBLE_DEVICES entry {token!r} names no GPU here (CUDA ignores it and all after it)"
            break
        gpus.append(Gpu(len(gpus), token, hit[0], hit[1]))
    shown = ", ".join(f"{g.id} = {g.entry}" for g in gpus) or "none"
    return gpus, f"{how}; CUDA_VISIBLE_DEVICES={visible!r}: --gpu ids are positions in it ({shown})"


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


def _absent_message(flag: str, absent: Sequence[int], gpus: Sequence[Gpu], how: str) -> str:
    valid = f"valid --gpu ids here: {','.join(str(g.id) for g in gpus)} (GPUs {','.join(str(g.id) for g in gpus)}" \
        if gpus else "valid --gpu ids here: none (no GPU visible to the tuner"
    return (f"{valid}; {how}). {flag} names GPU(s) {','.join(map(str, absent))}. "
            f"To run the trials on CPU instead, replace --gpu with --cpu_slots N (N trials at a time; e.g. "
            f"--cpu_slots 1).")


def _allocator_override(env, trials_per_gpu: int) -> Dict[str, str]:
    """naive_best_fit grabs most of a card at start (FLAGS_fraction_of_gpu_memory_to_use, default 0.92):
    with K > 1 trials per GPU the second one would fail, so trials get auto_growth instead (with a note)."""
    if trials_per_gpu < 2 or env.get("FLAGS_allocator_strategy", "").strip() != "naive_best_fit":
        return {}
    try:
        fraction = float(env.get("FLAGS_fraction_of_gpu_memory_to_use", "0.92"))
    except ValueError:
        fraction = 0.92
    if fraction * trials_per_gpu <= 0.95:  # the user sized the pre-allocation for K trials
        return {}
    print(f"note: FLAGS_allocator_strategy=naive_best_fit pre-allocates {fraction:.0%} of a GPU per process, "
          f"so {trials_per_gpu} trials per GPU cannot start; trials get FLAGS_allocator_strategy=auto_growth "
          f"(set FLAGS_fraction_of_gpu_memory_to_use <= {0.95 / trials_per_gpu:.2f} to keep naive_best_fit).",
          file=sys.stderr)
    return {"FLAGS_allocator_strategy": "auto_growth"}


def plan_slots(
    gpu: Optional[str], cpu_slots: Optional[int], trials_per_gpu: int = 1, environ=None
) -> List[Slot]:
    """The pool's slots. ``gpu`` is the --gpu text or None when not given (PaddleHub's default "0").

    CPU slots get ``CUDA_VISIBLE_DEVICES=""``; GPU slots get the visible list's entry for their id
    (see :func:`visible_gpus`), ``trials_per_gpu`` slots per GPU, and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``
    (unless the user set CUDA_DEVICE_ORDER) so that indices mean nvidia-smi's. Every slot gets
    ``AUTOFT_CPU_SLOTS=<concurrent trials>`` so each trial takes its share of the cores (not set when
    the user fixed OMP_NUM_THREADS). Raises AutoftError when --gpu names GPUs that are absent,
    listing the valid ids first and suggesting --cpu_slots.
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
        return [Slot(f"cpu{i}", {"CUDA_VISIBLE_DEVICES": "", **_thread_budget(env, cpu_slots)})
                for i in range(cpu_slots)]
    text = "0" if gpu is None else gpu
    wanted = parse_gpu_flag(text)
    gpus, how = visible_gpus(env)
    by_id = {g.id: g for g in gpus}
    absent = [i for i in wanted if i not in by_id]
    if absent:
        raise AutoftError(_absent_message(f"--gpu={text}" if gpu is not None else "--gpu (default 0)", absent, gpus, how))
    shared = {**_thread_budget(env, len(wanted) * trials_per_gpu), **_allocator_override(env, trials_per_gpu)}
    if "CUDA_DEVICE_ORDER" not in env:
        shared["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    # GPU-major interleaving: with fewer trials than slots, the trials spread over the GPUs.
    return [Slot(f"gpu{i}" + (f".{k}" if trials_per_gpu > 1 else ""),
                 {**shared, "CUDA_VISIBLE_DEVICES": by_id[i].entry})
            for k in range(trials_per_gpu) for i in wanted]


def _thread_budget(env, concurrent: int) -> Dict[str, str]:
    """Each of ``concurrent`` trials gets cores / concurrent threads (runtime.setup_process reads it)."""
    return {} if env.get("OMP_NUM_THREADS") else {CPU_SLOTS_ENV: str(concurrent)}
