"""Will K trials fit one GPU? Checked once before the first trial, from an estimated peak per trial.

The estimate comes from ``autoft.memory.estimate_peak_bytes`` (model config, batch, sequence
length, dtype, optimizer); each card's memory from ``nvidia-smi --query-gpu=index,uuid,memory.total``
(a MIG instance: the size in its profile name, e.g. 3g.20gb = 20·10⁹ bytes). An out-of-memory
trial only shows up as a crash and is scored worst, which biases the search, so a
``--trials_per_gpu K`` that cannot fit is refused before anything runs (docs/gpu.md).
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from autoft.errors import AutoftError
from autoft.tuner.devices import Slot, nvidia_smi, physical_gpus, resolve_entry

GIB = 1024**3
# Above this share of a card a trial is borderline: allocator fragmentation can push it over.
BORDERLINE = 0.9
MEMORY_QUERY = ["--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"]
FIXES = ("--amp fp16 (or bf16), a smaller batch_size with grad_accum to keep the effective batch, "
         "a shorter max_seq_len")


def card_memory(environ=None) -> Tuple[Dict[str, int], str]:
    """``({index or uuid: total bytes}, note)`` from nvidia-smi's memory query; empty when it fails."""
    env = os.environ if environ is None else environ
    out, how = nvidia_smi(MEMORY_QUERY, env)
    totals: Dict[str, int] = {}
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
            totals[parts[0]] = totals[parts[1]] = int(parts[2]) * 1024**2  # MiB
    return totals, how


def _mig_bytes(profile: str) -> Optional[int]:
    m = re.search(r"(\d+(?:\.\d+)?)gb", profile)
    return int(float(m.group(1)) * 1e9) if m else None


def slot_card_bytes(entry: str, physical, totals: Dict[str, int]) -> Optional[int]:
    """Memory of the device a trial's CUDA_VISIBLE_DEVICES entry names; None when unknown."""
    hit = resolve_entry(entry, physical)
    if hit is None or hit[0] is None:
        return totals.get(entry)
    card, mig = hit
    if mig is not None:
        return _mig_bytes(mig.profile)
    return totals.get(str(card.index)) or totals.get(card.uuid)


def check_gpu_memory(slots: Sequence[Slot], estimate_bytes: int, trials_per_gpu: int, environ=None) -> List[str]:
    """Warnings about GPU memory for these slots; AutoftError when ``trials_per_gpu`` trials cannot fit.

    ``estimate_bytes`` is one trial's whole peak (autoft.memory counts the CUDA context and allocator
    fragmentation per process), so K trials need K times it. A card that cannot hold K > 1 trials
    is a refusal naming how many fit; a single trial that does not fit, or any use above 90 % of a
    card, is a warning (the estimate is not exact; the trial itself says for sure). CPU slots are
    ignored; a card whose memory cannot be read is one warning.
    """
    env = os.environ if environ is None else environ
    entries = list(dict.fromkeys(s.env["CUDA_VISIBLE_DEVICES"] for s in slots if s.env.get("CUDA_VISIBLE_DEVICES")))
    if not entries:
        return []
    physical, _ = physical_gpus(env)
    totals, how = card_memory(env)
    per_trial = max(1, int(estimate_bytes))
    warnings, refusals = [], []
    for entry in entries:
        total = slot_card_bytes(entry, physical, totals)
        if total is None:
            warnings.append(f"GPU {entry}: memory unknown ({how}); the memory pre-check is skipped for it")
            continue
        need = trials_per_gpu * per_trial
        what = (f"GPU {entry} ({total / GIB:.1f} GiB): {trials_per_gpu} trial(s) x ~{per_trial / GIB:.1f} GiB "
                f"(estimated peak per trial) = {need / GIB:.1f} GiB")
        if need > total and trials_per_gpu > 1:
            fit = total // per_trial
            refusals.append((f"{what} do not fit; at most {fit} fit(s)", fit))
        elif need > total:
            warnings.append(f"{what} exceeds the card: the trials will likely run out of GPU memory; use {FIXES}")
        elif need > BORDERLINE * total:
            warnings.append(f"{what} is over {BORDERLINE:.0%} of the card: borderline; if trials run out of "
                            f"memory use {FIXES}")
    if refusals:
        most = min(fit for _, fit in refusals)
        fewer = f"--trials_per_gpu {most}" if most >= 1 else "--trials_per_gpu 1"
        raise AutoftError(f"--trials_per_gpu {trials_per_gpu} does not fit: " + "; ".join(t for t, _ in refusals)
                          + f". Use {fewer}, or lower each trial's peak: {FIXES} (docs/gpu.md).")
    return warnings


# The seam with `train.py --check` (run once by the tuner before the first trial): the check prints
# this line with autoft.memory.estimate_peak_bytes(...) for the trial's model and flags.
ESTIMATE_LINE = "estimated GPU peak per trial (bytes): "


def estimate_line(estimate_bytes: int) -> str:
    """The line ``train.py --check`` prints for the tuner."""
    return f"{ESTIMATE_LINE}{int(estimate_bytes)}"


def estimate_from_output(text: str) -> Optional[int]:
    """The estimate in a ``--check`` run's output (its last such line), or None when it printed none."""
    found = [line.split(ESTIMATE_LINE, 1)[1].strip() for line in text.splitlines() if ESTIMATE_LINE in line]
    return int(found[-1]) if found and found[-1].isdigit() else None


def precheck(slots: Sequence[Slot], check_output: str, trials_per_gpu: int, environ=None) -> List[str]:
    """check_gpu_memory with the estimate from a ``--check`` run's output; [] when it gave none."""
    estimate = estimate_from_output(check_output)
    return [] if estimate is None else check_gpu_memory(slots, estimate, trials_per_gpu, environ)
