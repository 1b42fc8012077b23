"""Conversion of a foreign state dict to our parameter names: name rules, applied and checked.

A format is described by data (:class:`Table`): rules that map a source tensor name to one
of our encoder names (transposed or not, which q|k|v slot of the fused attention tensor),
model prefixes to strip, names to ignore and known names we do not use. :func:`apply_rules`
applies any table; :func:`check_state` checks the result against the parameter table of the
model (``autoft.model.param_table``), so the expected names and shapes are written once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from autoft.errors import AutoftError
from autoft.weights.files import short_list

if TYPE_CHECKING:  # autoft.model imports paddle: only for type checkers
    from autoft.model import BertConfig

LAYER = r"(\d+)"  # the layer-index group of a source name pattern
QKV = "encoder.layers.{0}.attention.qkv"


@dataclass(frozen=True)
class Rule:
    """One row of a name table.

    ``source`` is a regex matched in full against the source tensor name (prefix removed);
    its groups fill ``{0}``, ``{1}`` in ``target``. ``transpose`` turns a PyTorch Linear
    weight [out, in] into Paddle's [in, out]. ``part`` (0, 1, 2) says which q|k|v column
    block of the fused ``attention.qkv`` tensor this source tensor fills.
    """

    source: str
    target: str
    transpose: bool = False
    part: Optional[int] = None


def linear(source: str, target: str, transpose: bool = False, part: Optional[int] = None,
           weight: str = r"\.weight", bias: str = r"\.bias") -> List[Rule]:
    """The weight and bias rules of one Linear layer."""
    return [Rule(source + weight, target + ".weight", transpose, part),
            Rule(source + bias, target + ".bias", False, part)]


def norm(source: str, target: str, scale: str, shift: str) -> List[Rule]:
    """The scale and shift rules of one LayerNorm."""
    return [Rule(source + scale, target + ".weight"), Rule(source + shift, target + ".bias")]


@dataclass(frozen=True)
class Table:
    """Everything format-specific about tensor names."""

    rules: Sequence[Rule]
    prefixes: Tuple[str, ...]  # model prefixes stripped when present (e.g. "bert.")
    ignore: str                # regex of non-weights dropped silently (buffers, name tables)
    unused: str                # regex of known tensors we do not use (reported in info["unused"])


@dataclass(frozen=True)
class Source:
    """What a format's ``locate(path)`` finds: the config (a BertConfig) and the files.

    ``load`` reads the (large) weights file only when called: the config and vocab.txt are
    checked first, so a wrong directory fails fast.
    """

    config: BertConfig
    config_source: str
    weights: Path
    load: Callable[[], Dict[str, np.ndarray]]
    vocab: Path
    do_lower_case: bool


def config_from(raw: dict, source: str, overrides: Optional[dict] = None) -> BertConfig:
    """BertConfig from a foreign config dict (HF, PaddleNLP and BERT-TF use the same key names).

    ``overrides`` win over the file (e.g. PaddleHub's LayerNorm epsilon); the checks and
    defaults are BertConfig's own.
    """
    from autoft.model import BertConfig

    return BertConfig.from_dict({**raw, **(overrides or {})}, source)


def apply_rules(tensors: Dict[str, np.ndarray], table: Table, source: str):
    """Map ``tensors`` (source names) to our names with ``table``.

    Returns ``(state, origin, unused)``: ``state`` maps our names (including
    ``classifier.*`` when present) to float32 arrays, ``origin`` maps each of our names to
    the source name(s) it came from, ``unused`` lists known-but-unused source names.
    Raises AutoftError listing every source name the table does not know, and for a fused
    q|k|v tensor with a slot missing.
    """
    compiled = [(re.compile(r.source), r) for r in table.rules]
    ignore = re.compile(table.ignore) if table.ignore else None
    unused_re = re.compile(table.unused) if table.unused else None
    state: Dict[str, np.ndarray] = {}
    origin: Dict[str, List[str]] = {}
    parts: Dict[str, Dict[int, np.ndarray]] = {}
    unknown: List[str] = []
    unused: List[str] = []
    for name in sorted(tensors):
        key = _strip_prefix(name, table.prefixes)
        if ignore is not None and ignore.fullmatch(key):
            continue
        rule, m = _match(compiled, key)
        if rule is None:
            (unused if unused_re is not None and unused_re.fullmatch(key) else unknown).append(name)
            continue
        target = rule.target.format(*m.groups())
        array = np.asarray(tensors[name])
        if rule.transpose:
            array = array.T
        array = np.ascontiguousarray(array, dtype=np.float32)
        if target in origin and rule.part is None or (rule.part is not None and rule.part in parts.get(target, {})):
            raise AutoftError(
                f"{source}: tensors {origin[target][0]} and {name} both map to {target}; "
                "expected one copy of each weight (is the model saved twice under different prefixes?)")
        origin.setdefault(target, []).append(name)
        if rule.part is None:
            state[target] = array
        else:
            parts.setdefault(target, {})[rule.part] = array
    if unknown:
        raise AutoftError(
            f"{source}: {len(unknown)} tensor name(s) are not BERT weights this reader knows: "
            f"{short_list(unknown)}; expected the tensor names of docs/weights.md "
            "(is this a different architecture, or a different format?)")
    _fuse_qkv(state, origin, parts, source)
    return state, origin, unused


def _strip_prefix(name: str, prefixes: Sequence[str]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _match(compiled, key: str):
    for pattern, rule in compiled:
        m = pattern.fullmatch(key)
        if m:
            return rule, m
    return None, None


def _fuse_qkv(state, origin, parts, source: str) -> None:
    slots = ("query", "key", "value")
    for target, got in parts.items():
        if len(got) != 3:
            lacking = ", ".join(slots[i] for i in range(3) if i not in got)
            raise AutoftError(
                f"{source}: missing tensor(s) for {target}: found {', '.join(origin[target])} "
                f"but not the {lacking} part")
        # Columns q|k|v: Paddle orientation puts outputs on the last axis.
        state[target] = np.concatenate([got[0], got[1], got[2]], axis=-1)


def check_state(state: Dict[str, np.ndarray], origin: Dict[str, List[str]], config: BertConfig, source: str,
                config_source: str) -> Optional[dict]:
    """Check ``state`` against the encoder's parameter table for ``config``; split off a classifier head.

    Returns ``{"weight", "bias"}`` of a classifier head, or None. Raises one AutoftError
    naming every missing tensor, every tensor of a layer beyond the config's depth and
    every wrong shape (expected vs found).
    """
    from autoft.model import param_table  # the one description of names and shapes

    expected = {p.name: p.shape for p in param_table(config)}
    classifier = {k.split(".", 1)[1]: state.pop(k) for k in ("classifier.weight", "classifier.bias") if k in state}
    problems: List[str] = []
    missing = [k for k in expected if k not in state]
    if missing:
        problems.append(f"missing tensor(s) {short_list(missing)}")
    extra = [k for k in state if k not in expected]
    if extra:
        problems.append(
            f"tensor(s) {short_list([origin[k][0] for k in extra])} are not part of a "
            f"{config.num_hidden_layers}-layer model (num_hidden_layers from {config_source})")
    wrong = [f"{k} (from {', '.join(origin[k])}): expected {list(shape)}, found {list(state[k].shape)}"
             for k, shape in expected.items() if k in state and state[k].shape != shape]
    if classifier:
        problems += _check_head(classifier, origin, config.hidden_size, wrong)
    if wrong:
        problems.append("wrong shape: " + "; ".join(wrong))
    if problems:
        raise AutoftError(f"{source}: cannot load as a BERT with the config of {config_source}: " + "; ".join(problems))
    return classifier or None


def _check_head(classifier: dict, origin, hidden: int, wrong: List[str]) -> List[str]:
    if set(classifier) != {"weight", "bias"}:
        return [f"classifier head incomplete: found only classifier.{', classifier.'.join(classifier)}"]
    n = classifier["bias"].shape[0] if classifier["bias"].ndim == 1 else -1
    if classifier["weight"].shape != (hidden, n) or n < 1:
        wrong.append(f"classifier (from {', '.join(origin['classifier.weight'] + origin['classifier.bias'])}): "
                     f"expected weight [{hidden}, n] and bias [n], found weight "
                     f"{list(classifier['weight'].shape)} and bias {list(classifier['bias'].shape)}")
    return []
