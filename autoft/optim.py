"""Discriminative learning rates, LR schedules and gradual unfreezing.

The semantics are PaddleHub 1.4's CombinedStrategy as the seed used it (docs/finetune.md):

- The model is split once into "levels" (``model.levels()``: parameter names per op-depth
  level, TOP first, from the model's parameter table). ``blocks`` B and ``factor`` f give
  level c the multiplier ``f**0`` if c == 0 else ``f**-floor((c-1)/L)`` with
  ``L = ceil(n/B)``. So the classifier and the next L levels train at the full LR, the next
  L at LR/f, and so on down to the embeddings. With ``mode="layers"`` (PaddleHub v1.6's
  ``params_layer``) the multiplier is ``f**-(max_layer - layer)`` by transformer layer index.
- Weight decay: the parameter table says which parameters get it (not biases, not LayerNorm).
- Optimizer parameter groups carry the multiplier as ``learning_rate`` (Paddle AdamW's
  per-group scale of the global LR). Paddle's ``lr_ratio`` is not used: its CPU kernel
  applies the ratio to the weight decay only (and not at all to parameters without decay),
  which is why Paddle refuses it on CPU; the GPU kernel could not be tested here (see
  docs/finetune.md and tests/test_optim.py). The training loop sets the global LR from a
  schedule each step and never branches on groups.
- Schedules are pure functions of the optimizer step; gradual unfreezing is a pure
  function of the epoch plus one helper that flips ``stop_gradient``.

Nothing here imports Paddle at module level: the pure parts are testable without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

from autoft.errors import AutoftError

MODES = ("levels", "layers")


# ---------------------------------------------------------------- multipliers


def level_multipliers(n_levels: int, blocks: int, factor: float) -> List[float]:
    """LR multiplier of each level (index 0 = top/classifier), PaddleHub 1.4's rule.

    ``blocks <= 0`` disables discriminative LR (every level x1).
    """
    if n_levels <= 0:
        return []
    if blocks <= 0:
        return [1.0] * n_levels
    per_block = math.ceil(n_levels / blocks)
    return [1.0 if c == 0 else float(factor) ** -((c - 1) // per_block) for c in range(n_levels)]


def level_block_index(n_levels: int, blocks: int) -> List[int]:
    """Block number of each level (0 = full LR), same grouping as ``level_multipliers``."""
    if blocks <= 0:
        return [0] * n_levels
    per_block = math.ceil(n_levels / blocks)
    return [0 if c == 0 else (c - 1) // per_block for c in range(n_levels)]


def layer_multiplier(layer: int, max_layer: int, factor: float) -> float:
    """``params_layer`` rule: ``f**-(max_layer - layer)`` (top layer x1)."""
    return float(factor) ** -(max_layer - layer)


# ---------------------------------------------------------------- parameter groups


@dataclass
class GroupInfo:
    """What a parameter group is, for logging (kept apart from Paddle's group dicts)."""

    name: str  # e.g. "block3" or "layer5", plus "/no_decay"
    multiplier: float
    weight_decay: float
    param_names: List[str]


def param_groups(model, blocks: int, factor: float, mode: str = "levels", weight_decay: float = 0.01):
    """Split ``model``'s trainable parameters into AdamW parameter groups.

    ``model`` needs ``named_parameters()`` and ``param_table()`` (autoft.model.ParamSpec
    rows: level, layer and decay of each parameter). Each group is a Paddle AdamW
    param-group dict ``{"params", "learning_rate" (multiplier of the global LR),
    "weight_decay"}``; parameters with the same multiplier and decay share a group.
    Returns ``(groups, infos)`` with one GroupInfo per group, same order (top first).
    Raises AutoftError for a bad mode/factor or levels that do not cover the parameters
    exactly once.
    """
    if mode not in MODES:
        raise AutoftError(f"--dis_mode: expected one of {', '.join(MODES)}, found {mode!r}")
    if blocks > 0 and not float(factor) > 0:
        raise AutoftError(f"--factor: expected a number > 0, found {factor!r}")
    from autoft.model import levels_of

    params = {n: p for n, p in model.named_parameters()}
    rows = model.param_table()
    levels = levels_of(rows)
    _check_levels(levels, params)  # also catches a name listed twice
    table = {p.name: p for p in rows}

    # (key, multiplier) per parameter name, in top-first order.
    keyed: List[tuple] = []
    if mode == "levels":
        mults = level_multipliers(len(levels), blocks, factor)
        index = level_block_index(len(levels), blocks)
        for level, mult, b in zip(levels, mults, index):
            keyed += [(n, f"block{b}", mult) for n in level]
    else:
        names = [n for level in levels for n in level]
        layers = {n: table[n].layer for n in names}
        top = max(layers.values())
        for n in names:
            mult = layer_multiplier(layers[n], top, factor) if blocks > 0 else 1.0
            keyed.append((n, f"layer{layers[n]}", mult))

    groups: Dict[str, dict] = {}
    infos: Dict[str, GroupInfo] = {}
    for n, key, mult in keyed:
        decay = float(weight_decay) if table[n].decay else 0.0
        gkey = key + ("/no_decay" if decay == 0.0 else "")
        if gkey not in groups:
            groups[gkey] = {"params": [], "learning_rate": mult, "weight_decay": decay}
            infos[gkey] = GroupInfo(gkey, mult, decay, [])
        groups[gkey]["params"].append(params[n])
        infos[gkey].param_names.append(n)
    return list(groups.values()), list(infos.values())


def _check_levels(levels: Sequence[Sequence[str]], params: Dict[str, object]) -> None:
    seen: Dict[str, int] = {}
    for i, level in enumerate(levels):
        for n in level:
            if n not in params:
                raise AutoftError(f"model.param_table(): level {i} names {n!r}, which is not a parameter")
            if n in seen:
                raise AutoftError(f"model.param_table(): {n!r} appears in levels {seen[n]} and {i}")
            seen[n] = i
    trainable = [n for n, p in params.items() if not getattr(p, "stop_gradient", False)]
    missing = [n for n in trainable if n not in seen]
    if missing:
        raise AutoftError(f"model.param_table(): trainable parameters in no level: {', '.join(missing[:5])}")


# ---------------------------------------------------------------- schedules


def warmup_linear_decay(step: int, total: int, base_lr: float, warmup: float = 0.1,
                        start_point: float = 0.9, end_lr: float = 0.0) -> float:
    """CombinedStrategy warmup + linear decay (docs/finetune.md), step t counted from 0.

    W = floor(T*warmup), S = max(floor(T*start_point), W). t < W: base*t/W; W <= t < S: base
    (the LR stays where warmup left it); t >= S: (base-end)*(1 - min(t,T)/T) + end. The decay
    is measured from step 0, so the LR jumps down at S (as in PaddleHub 1.4).
    """
    total = max(int(total), 1)
    w = int(math.floor(total * warmup))
    s = max(int(math.floor(total * start_point)), w)
    if step < w:
        return base_lr * step / w
    if step < s:
        return base_lr
    return (base_lr - end_lr) * (1.0 - min(step, total) / total) + end_lr


def slanted_triangular(step: int, total: int, base_lr: float, cut_fraction: float = 0.1,
                       ratio: float = 32.0) -> float:
    """ULMFiT slanted triangular LR: rises for cut = floor(T*cut_fraction) steps, then falls.

    p = t/cut for t <= cut, else 1 - (t-cut)/(T-cut); LR = base*(1 + p*(ratio-1))/ratio.
    """
    total = max(int(total), 1)
    cut = int(math.floor(total * cut_fraction))
    if cut > 0 and step <= cut:
        p = step / cut
    else:
        p = 1.0 - (min(step, total) - cut) / max(total - cut, 1)
    return base_lr * (1.0 + p * (ratio - 1.0)) / ratio


def noam(step: int, base_lr: float, warmup_steps: int) -> float:
    """Noam decay: base*sqrt(W)*min(t**-0.5, t*W**-1.5) with t = step+1 (t from 1)."""
    t = step + 1
    w = max(int(warmup_steps), 1)
    return base_lr * math.sqrt(w) * min(t ** -0.5, t * w ** -1.5)


def make_schedule(base_lr: float, total_steps: int, warmup: float = 0.1, start_point: float = 0.9,
                  end_lr: float = 0.0, cut_fraction: float = 0.0, ratio: float = 32.0,
                  use_noam: bool = False) -> Callable[[int], float]:
    """The global LR as a function of the optimizer step, CombinedStrategy's precedence:
    slanted triangular (cut_fraction > 0) overrides; else noam if asked; else warmup +
    linear decay."""
    if cut_fraction > 0:
        return lambda t: slanted_triangular(t, total_steps, base_lr, cut_fraction, ratio)
    if use_noam:
        w = int(math.floor(total_steps * warmup))
        return lambda t: noam(t, base_lr, w)
    return lambda t: warmup_linear_decay(t, total_steps, base_lr, warmup, start_point, end_lr)


# ---------------------------------------------------------------- gradual unfreezing


def trainable_level_count(n_levels: int, frz_blocks: int, epoch: int) -> int:
    """How many top levels train in 1-based ``epoch`` with gradual unfreezing over
    ``frz_blocks`` epochs: floor(n*e/k) while e <= k, all afterwards (or if k <= 0)."""
    if frz_blocks <= 0 or epoch >= frz_blocks:
        return n_levels
    return (n_levels * max(epoch, 1)) // frz_blocks


def apply_unfreezing(model, n_trainable: int) -> List[str]:
    """Let only the top ``n_trainable`` levels of ``model.levels()`` train (stop_gradient on
    the rest). Returns the names of the frozen parameters."""
    params = dict(model.named_parameters())
    frozen = []
    for i, level in enumerate(model.levels()):
        for n in level:
            params[n].stop_gradient = i >= n_trainable
            if i >= n_trainable:
                frozen.append(n)
    return frozen
