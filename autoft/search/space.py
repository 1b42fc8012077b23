"""The search space: PaddleHub 1.4's hparam.yaml, and the mapping to the normalized cube [-1, 1]^d.

Schema (``param_list`` at the top level, one mapping per hyper-parameter)::

    param_list:
    - name : learning_rate        # becomes --learning_rate=<value> on the trial's command line
      init_value : 0.00005        # must lie within [greater_than, lower_than]
      type : float                # int | float
      greater_than : 0.000005     # lower bound L
      lower_than : 0.005          # upper bound U
      scale : log                 # optional (autoft addition): linear (default) | log
    - name : batch_size           # autoft addition: a categorical parameter
      type : choice
      values : [16, 32]           # numbers or strings (not both); no bounds, no scale
      init_value : 32             # one of the values

Mapping (PaddleHub's): encode z = -1 + 2(v - L)/(U - L), clipped to [-1, 1]; decode
v = L + (z + 1)/2 (U - L), clipped to [L, U]; ints truncated with int(), so U is reached only at
z = 1. With ``scale: log`` the same mapping is applied to log(v), log(L), log(U).
A choice of k values splits [-1, 1] into k equal bins in the order written: value i is encoded
as the centre of bin i, z = -1 + (2i + 1)/k, and any z in [-1 + 2i/k, -1 + 2(i + 1)/k) decodes to
it (z >= 1 to the last value), so every strategy searches it like any other coordinate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from autoft.errors import AutoftError, where

Number = Union[int, float]
Value = Union[int, float, str]  # a choice's values may be strings

TYPES = ("int", "float", "choice")
SCALES = ("linear", "log")
REQUIRED_KEYS = ("name", "init_value", "type", "greater_than", "lower_than")
OPTIONAL_KEYS = ("scale",)
CHOICE_KEYS = ("name", "init_value", "type", "values")  # all required for type: choice


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: bounds are hparam.yaml's ``greater_than`` (low) and ``lower_than`` (high).

    A ``type="choice"`` parameter has its ``values`` instead (low and high are unused).
    """

    name: str
    init_value: Value
    type: str = "float"
    low: float = 0.0
    high: float = 1.0
    scale: str = "linear"
    values: Tuple[Value, ...] = ()

    def _to_unit(self, value: float) -> float:
        """Value -> position in [0, 1] (unclipped)."""
        if self.scale == "log":
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def encode(self, value: Value) -> float:
        """Value -> normalized coordinate in [-1, 1] (clipped, as PaddleHub did; a choice: its bin centre)."""
        if self.type == "choice":
            if value not in self.values:
                raise ValueError(f"{value!r} is not one of {self.name!r}'s values {list(self.values)}")
            return -1.0 + (2 * self.values.index(value) + 1) / len(self.values)
        value = float(value)
        if self.scale == "log" and value <= 0:
            return -1.0  # below any positive lower bound
        return float(min(1.0, max(-1.0, -1.0 + 2.0 * self._to_unit(value))))

    def decode(self, z: float) -> Value:
        """Normalized coordinate -> value in [low, high]; ints truncated with int() like PaddleHub;
        a choice: the value of the bin z falls in (z clipped to [-1, 1])."""
        z = float(z)
        if not math.isfinite(z):
            raise ValueError(f"cannot decode a non-finite coordinate {z!r} for {self.name!r}")
        if self.type == "choice":
            k = len(self.values)
            return self.values[min(k - 1, max(0, math.floor((z + 1.0) / 2.0 * k)))]
        # The end points are exact (float rounding must not make z = 1 decode to just below U,
        # which int() would then truncate to U - 1).
        if z >= 1.0:
            value = float(self.high)
        elif z <= -1.0:
            value = float(self.low)
        else:
            t = (z + 1.0) / 2.0
            if self.scale == "log":
                lo, hi = math.log(self.low), math.log(self.high)
                value = math.exp(lo + t * (hi - lo))
            else:
                value = self.low + t * (self.high - self.low)
            value = min(float(self.high), max(float(self.low), value))
        if self.type == "int":
            # PaddleHub's int() truncation; rounding to 9 decimals first only removes float noise,
            # so that decode(encode(16)) is 16 and not 15.
            return int(round(value, 9))
        # 12 significant digits: trial command lines show 5e-05, not 5.00000000000001e-05.
        return min(float(self.high), max(float(self.low), float(f"{value:.12g}")))


class SearchSpace:
    """An ordered list of :class:`Param`; points are numpy vectors in [-1, 1]^dim in that order."""

    def __init__(self, params: Sequence[Param], source: str = "<search space>"):
        if not params:
            raise AutoftError(f"{source}: the search space has no parameters")
        seen = set()
        for p in params:
            if p.name in seen:
                raise AutoftError(f"{source}: parameter {p.name!r} is defined twice")
            seen.add(p.name)
        self.params: List[Param] = list(params)
        self.source = source

    @property
    def dim(self) -> int:
        """Number of hyper-parameters."""
        return len(self.params)

    @property
    def names(self) -> List[str]:
        """Hyper-parameter names in file order."""
        return [p.name for p in self.params]

    def __repr__(self) -> str:
        return f"SearchSpace({self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.params == other.params

    # ---- loading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Union[str, Path]) -> SearchSpace:
        """Read and validate an hparam.yaml file; AutoftError names file:line and the entry."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AutoftError(
                f"{path}: search space file not found (expected a PaddleHub hparam.yaml)"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AutoftError(f"{path}: cannot read the search space file: {exc}") from None
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def from_yaml(cls, text: str, source: str = "<hparam.yaml>") -> SearchSpace:
        """Parse hparam.yaml text; ``source`` names it in error messages."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = " ".join(str(s) for s in (exc.context, exc.problem) if s)
            raise AutoftError(f"{where(source, line)}: invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise AutoftError(f"{source}: invalid YAML: {exc}") from None
        return cls.from_config(data, source=source, _lines=_entry_lines(node))

    @classmethod
    def from_config(
        cls, data: Any, source: str = "<search space>", _lines: Optional[dict] = None
    ) -> SearchSpace:
        """Validate an already parsed hparam.yaml mapping (``{"param_list": [...]}``)."""
        lines = _lines or {}
        top_line = lines.get("top")
        if not isinstance(data, Mapping) or "param_list" not in data:
            found = "an empty file" if data is None else f"a {type(data).__name__}"
            if isinstance(data, Mapping):
                found = f"keys {sorted(map(str, data))}"
            raise AutoftError(
                f"{where(source, top_line)}: expected a mapping with the key 'param_list' "
                f"(a list of hyper-parameters), found {found}"
            )
        extra = [str(k) for k in data if k != "param_list"]
        if extra:
            raise AutoftError(
                f"{where(source, lines.get(('topkey', extra[0])))}: unknown top-level key {extra[0]!r}; "
                f"only 'param_list' is read"
            )
        entries = data["param_list"]
        if not isinstance(entries, list) or not entries:
            raise AutoftError(
                f"{where(source, lines.get('param_list'))}: 'param_list' must be a non-empty list of "
                f"mappings, found {_describe(entries)}"
            )
        params = []
        seen: Dict[str, int] = {}
        for i, entry in enumerate(entries):
            p = _parse_entry(entry, i, source, lines)
            if p.name in seen:
                raise AutoftError(
                    f"{where(source, lines.get(('entry', i)))}: param_list entry {i + 1} ({p.name}): "
                    f"name {p.name!r} is already used by entry {seen[p.name] + 1}"
                )
            seen[p.name] = i
            params.append(p)
        return cls(params, source=source)

    # ---- mapping -----------------------------------------------------------------------------
    def encode(self, values: Mapping[str, Value]) -> np.ndarray:
        """{name: value} -> normalized point (float64 [dim]) in [-1, 1]; every name is required."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise KeyError(f"values for {missing} are missing (search space: {self.names})")
        return np.array([p.encode(values[p.name]) for p in self.params], dtype=np.float64)

    def decode(self, z: Sequence[float]) -> Dict[str, Value]:
        """Normalized point -> {name: value}; clipped into bounds, ints truncated (PaddleHub's rule)."""
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        if z.shape[0] != self.dim:
            raise ValueError(f"point has {z.shape[0]} coordinates, the search space has {self.dim}")
        return {p.name: p.decode(zi) for p, zi in zip(self.params, z)}

    @property
    def is_grid(self) -> bool:
        """Every parameter is an int or a choice: the space is a finite set of trials."""
        return all(p.type in ("int", "choice") for p in self.params)

    def snap(self, z: Sequence[float]) -> np.ndarray:
        """The point a trial at ``z`` really runs, as normalized coordinates: ``encode(decode(z))``
        (for a float only decode's clip; its 12-digit rounding is left out).

        A choice moves to its bin's centre, an int to its truncated value, a float stays (clipped);
        rows of a 2-D array are snapped one by one. Two points with equal snaps run the same trial.
        """
        z = np.asarray(z, dtype=np.float64)
        rows = np.atleast_2d(z)
        if rows.shape[1] != self.dim:
            raise ValueError(f"points have {rows.shape[1]} coordinates, the search space has {self.dim}")
        out = np.empty_like(rows)
        for j, p in enumerate(self.params):
            col = rows[:, j]
            if p.type == "choice":  # vectorized Param.decode + encode: the bin's centre
                k = len(p.values)
                idx = np.clip(np.floor((np.clip(col, -1.0, 1.0) + 1.0) / 2.0 * k), 0, k - 1)
                out[:, j] = -1.0 + (2.0 * idx + 1.0) / k
            elif p.type == "float":  # decode clips; encode(decode(z)) is z up to 12-digit rounding
                out[:, j] = np.clip(col, -1.0, 1.0)
            else:  # an int: its truncated value (few candidates: per element)
                out[:, j] = [p.encode(p.decode(v)) for v in col]
        return out.reshape(z.shape)

    def init_point(self) -> np.ndarray:
        """The encoded init values: the strategies' starting point x0."""
        return self.encode({p.name: p.init_value for p in self.params})

    def to_config(self) -> Dict[str, Any]:
        """The space as an hparam.yaml-shaped dict (``from_config(to_config())`` gives it back)."""
        entries = []
        for p in self.params:
            if p.type == "choice":
                entries.append({"name": p.name, "init_value": p.init_value, "type": "choice", "values": list(p.values)})
                continue
            entry: Dict[str, Any] = {
                "name": p.name,
                "init_value": p.init_value,
                "type": p.type,
                "greater_than": p.low,
                "lower_than": p.high,
            }
            if p.scale != "linear":
                entry["scale"] = p.scale
            entries.append(entry)
        return {"param_list": entries}

    def init_values(self) -> Dict[str, Value]:
        """{name: init_value} with each value of its declared type (a choice's as written)."""
        cast = {"int": int, "float": float, "choice": lambda v: v}
        return {p.name: cast[p.type](p.init_value) for p in self.params}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (list, dict)):
        return f"a {type(value).__name__}"
    return f"{type(value).__name__} {value!r}"


def _as_number(value: Any) -> Optional[float]:
    """A finite number, or None. Strings like '5e-6' count: YAML 1.1 (PyYAML) reads an exponent
    without a decimal point as a string, and hparam.yaml files are full of such learning rates."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    return None


def _parse_entry(entry: Any, i: int, source: str, lines: dict) -> Param:
    entry_line = lines.get(("entry", i))
    if not isinstance(entry, Mapping):
        raise AutoftError(
            f"{where(source, entry_line)}: param_list entry {i + 1} must be a mapping with keys "
            f"{', '.join(REQUIRED_KEYS)}; found {_describe(entry)}"
        )
    raw_name = entry.get("name")
    label = f"param_list entry {i + 1}" + (f" ({raw_name})" if raw_name is not None else "")

    def fail(msg: str, key: Optional[str] = None) -> AutoftError:
        line = lines.get(("key", i, key), entry_line) if key else entry_line
        return AutoftError(f"{where(source, line)}: {label}: {msg}")

    if ("dup", i) in lines:
        key, line = lines[("dup", i)]
        raise AutoftError(f"{where(source, line)}: {label}: key {key!r} is given twice")
    if isinstance(entry.get("type"), str) and entry["type"].strip().lower() == "choice":
        return _parse_choice(entry, fail)
    for key in entry:
        if key == "values":
            raise fail("'values' is only read for type: choice (this entry's type is "
                       f"{entry.get('type')!r}, which uses greater_than / lower_than)", key)
        if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
            raise fail(
                f"unknown key {key!r}; expected {', '.join(REQUIRED_KEYS)} and optionally 'scale'", key
            )
    for key in REQUIRED_KEYS:
        if key not in entry:
            raise fail(f"missing key {key!r}")

    name = entry["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise fail(
            f"'name' must be an identifier (letters, digits, _; it becomes --<name>), found {name!r}", "name"
        )
    ptype = entry["type"]
    if not isinstance(ptype, str) or ptype.strip().lower() not in TYPES:
        raise fail(f"'type' must be int or float (or choice, with a list of values), found {ptype!r}", "type")
    ptype = ptype.strip().lower()
    scale = entry.get("scale", "linear")
    if not isinstance(scale, str) or scale.strip().lower() not in SCALES:
        raise fail(f"'scale' must be linear or log, found {scale!r}", "scale")
    scale = scale.strip().lower()

    numbers = {}
    for key in ("init_value", "greater_than", "lower_than"):
        numbers[key] = _as_number(entry[key])
        if numbers[key] is None:
            raise fail(f"{key!r} must be a finite number, found {entry[key]!r}", key)
    low, high, init = numbers["greater_than"], numbers["lower_than"], numbers["init_value"]
    if not low < high:
        raise fail(f"greater_than ({low}) must be smaller than lower_than ({high})", "greater_than")
    if not low <= init <= high:
        raise fail(
            f"init_value {init} is outside its bounds [greater_than={low}, lower_than={high}]", "init_value"
        )
    if ptype == "int":
        if init != int(init):
            raise fail(f"init_value {init} is not an integer but type is int", "init_value")
        init = int(init)
    else:
        init = float(init)
    if scale == "log" and low <= 0:
        raise fail(f"scale: log needs positive bounds, found greater_than={low}", "scale")
    return Param(name=name, init_value=init, type=ptype, low=float(low), high=float(high), scale=scale)


def _parse_choice(entry: Mapping, fail: Callable[..., AutoftError]) -> Param:
    """A ``type: choice`` entry: name, init_value, type and a list of distinct values."""
    for key in entry:
        if key not in CHOICE_KEYS:
            raise fail(f"unknown key {key!r} for type: choice; expected {', '.join(CHOICE_KEYS)} "
                       "(a choice has no bounds and no scale)", key)
    for key in CHOICE_KEYS:
        if key not in entry:
            raise fail(f"missing key {key!r} (type: choice needs {', '.join(CHOICE_KEYS)})")
    name = entry["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise fail(
            f"'name' must be an identifier (letters, digits, _; it becomes --<name>), found {name!r}", "name"
        )
    values = entry["values"]
    if not isinstance(values, list) or not values:
        raise fail(f"'values' must be a non-empty list like [16, 32], found {_describe(values)}", "values")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)) or (isinstance(v, float) and not math.isfinite(v)):
            raise fail(f"'values' may hold only finite numbers or strings (quote true/false/null to "
                       f"pass them as text), found {v!r}", "values")
    if len({isinstance(v, str) for v in values}) > 1:
        raise fail(f"'values' must be all numbers or all strings, found {values!r}", "values")
    for j, v in enumerate(values):
        if v in values[:j]:
            raise fail(f"'values' lists {v!r} twice", "values")
    init = entry["init_value"]
    if isinstance(init, bool) or init not in values:
        raise fail(f"init_value {init!r} is not one of the values {values!r}", "init_value")
    init = values[values.index(init)]  # as written in values (16, not 16.0)
    return Param(name=name, init_value=init, type="choice", values=tuple(values))


def _entry_lines(node: Any) -> dict:
    """1-based line numbers of the YAML nodes we mention in messages (from yaml's compose tree)."""
    lines: dict = {}
    if node is None:
        return lines
    lines["top"] = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key_node, value_node in node.value:
        key = getattr(key_node, "value", None)
        lines[("topkey", key)] = key_node.start_mark.line + 1
        if key != "param_list":
            continue
        lines["param_list"] = key_node.start_mark.line + 1
        if not isinstance(value_node, yaml.SequenceNode):
            continue
        for i, item in enumerate(value_node.value):
            lines[("entry", i)] = item.start_mark.line + 1
            if isinstance(item, yaml.MappingNode):
                for k, _v in item.value:
                    key_name = getattr(k, "value", None)
                    if ("key", i, key_name) in lines and ("dup", i) not in lines:
                        # PyYAML keeps the last of duplicate keys silently; we refuse them.
                        lines[("dup", i)] = (key_name, k.start_mark.line + 1)
                    lines[("key", i, key_name)] = k.start_mark.line + 1
    return lines
