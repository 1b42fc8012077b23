"""hparam.yaml validation (every message) and PaddleHub's encode/decode mapping."""

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from autoft.errors import AutoftError
from autoft.search import Param, SearchSpace

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
param_list:
- name : learning_rate
  init_value : 0.00005
  type : float
  lower_than : 0.005
  greater_than : 0.000005
- name : blocks
  init_value : 16
  type : int
  lower_than : 24
  greater_than : 12
"""


def write(tmp_path, text, name="hparam.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(AutoftError) as info:
        SearchSpace.load(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg  # every message names the file
    return msg[len(str(path)) :]


def test_seed_hparam_yaml_loads_with_types_and_bounds():
    space = SearchSpace.load(ROOT / "hparam.yaml")
    assert space.names == ["learning_rate", "blocks", "factor"]
    assert space.dim == 3
    lr, blocks, factor = space.params
    assert lr == Param("learning_rate", 5e-05, "float", 5e-06, 0.005, "linear")
    assert blocks.type == "int" and blocks.init_value == 16 and isinstance(blocks.init_value, int)
    assert (factor.low, factor.high) == (1.0, 1.2)
    decoded = space.decode(space.init_point())
    assert decoded["blocks"] == 16 and isinstance(decoded["blocks"], int)
    # Exactly the init values: float noise of the round trip never reaches a command line.
    assert decoded == {"learning_rate": 5e-05, "blocks": 16, "factor": 1.1}
    assert str(decoded["learning_rate"]) == "5e-05"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    msg = load_error(tmp_path, "param_list:\n- name : a\n  init_value : [1, 2\n  type : float\n")
    assert msg.startswith(":4: invalid YAML") or msg.startswith(":5: invalid YAML"), msg


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AutoftError, match=r"nope\.yaml: search space file not found"):
        SearchSpace.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ":  ?expected a mapping with the key 'param_list'.*found an empty file"),
        ("params: []\n", ":1: expected a mapping with the key 'param_list'.*found keys \\['params'\\]"),
        ("- 1\n- 2\n", ":1: expected a mapping with the key 'param_list'.*found a list"),
        ("param_list: []\n", ":1: 'param_list' must be a non-empty list of mappings, found a list"),
        ("param_list: 3\n", ":1: 'param_list' must be a non-empty list of mappings, found int 3"),
        (GOOD + "extra: 1\n", ":12: unknown top-level key 'extra'; only 'param_list' is read"),
    ],
)
def test_top_level_errors(tmp_path, text, expected):
    import re

    msg = load_error(tmp_path, text)
    assert re.match(expected, msg), msg


ENTRY = (
    "param_list:\n- name : a\n  init_value : 0.5\n  type : float\n  greater_than : 0.0\n  lower_than : 1.0\n"
)


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "  lower_than : 1.0\n",
            "  lower_than : 1.0\n  lower_tan : 2\n",
            ":7: param_list entry 1 (a): unknown key 'lower_tan'; expected name, init_value, type, greater_than, lower_than and optionally 'scale'",
        ),
        ("  type : float\n", "", ":2: param_list entry 1 (a): missing key 'type'"),
        (
            "- name : a\n",
            "- name : 2a\n",
            ":2: param_list entry 1 (2a): 'name' must be an identifier (letters, digits, _; it becomes --<name>), found '2a'",
        ),
        (
            "  type : float\n",
            "  type : double\n",
            ":4: param_list entry 1 (a): 'type' must be int or float (or choice, with a list of values), found 'double'",
        ),
        (
            "  type : float\n",
            "  type : float\n  scale : exp\n",
            ":5: param_list entry 1 (a): 'scale' must be linear or log, found 'exp'",
        ),
        (
            "  greater_than : 0.0\n",
            "  greater_than : zero\n",
            ":5: param_list entry 1 (a): 'greater_than' must be a finite number, found 'zero'",
        ),
        (
            "  init_value : 0.5\n",
            "  init_value : true\n",
            ":3: param_list entry 1 (a): 'init_value' must be a finite number, found True",
        ),
        (
            "  greater_than : 0.0\n",
            "  greater_than : 1.0\n",
            ":5: param_list entry 1 (a): greater_than (1.0) must be smaller than lower_than (1.0)",
        ),
        (
            "  init_value : 0.5\n",
            "  init_value : 1.5\n",
            ":3: param_list entry 1 (a): init_value 1.5 is outside its bounds [greater_than=0.0, lower_than=1.0]",
        ),
        (
            "  type : float\n",
            "  type : float\n  scale : log\n",
            ":5: param_list entry 1 (a): scale: log needs positive bounds, found greater_than=0.0",
        ),
        (
            "  type : float\n",
            "  type : int\n",
            ":3: param_list entry 1 (a): init_value 0.5 is not an integer but type is int",
        ),
    ],
)
def test_entry_errors_name_line_entry_and_problem(tmp_path, old, new, expected):
    assert old in ENTRY
    msg = load_error(tmp_path, ENTRY.replace(old, new))
    assert msg == expected


def test_duplicate_key_in_an_entry_is_refused(tmp_path):
    msg = load_error(tmp_path, ENTRY + "  type : int\n")
    assert msg == ":7: param_list entry 1 (a): key 'type' is given twice"


def test_exponent_without_decimal_point_is_a_number(tmp_path):
    # PyYAML reads 5e-6 as the string '5e-6'; hparam.yaml authors mean a number.
    path = write(tmp_path, ENTRY.replace("0.0\n", "5e-6\n").replace("0.5\n", "1e-3\n"))
    (p,) = SearchSpace.load(path).params
    assert (p.low, p.init_value) == (5e-6, 1e-3)


def test_entry_that_is_not_a_mapping(tmp_path):
    msg = load_error(tmp_path, GOOD + "- learning_rate\n")
    assert msg == (
        ":12: param_list entry 3 must be a mapping with keys name, init_value, type, greater_than, "
        "lower_than; found str 'learning_rate'"
    )


def test_duplicate_name_names_both_entries(tmp_path):
    msg = load_error(tmp_path, GOOD + GOOD.split("\n", 1)[1])
    assert msg == ":12: param_list entry 3 (learning_rate): name 'learning_rate' is already used by entry 1"


def test_type_is_case_insensitive_and_int_init_may_be_written_as_float(tmp_path):
    text = "param_list:\n- name: a\n  init_value: 1.0\n  type: Int\n  greater_than: 0\n  lower_than: 9\n"
    path = write(tmp_path, text)
    (p,) = SearchSpace.load(path).params
    assert p.type == "int" and p.init_value == 1 and isinstance(p.init_value, int)


def test_linear_mapping_is_paddlehubs():
    p = Param("x", 2.0, "float", low=0.0, high=10.0)
    assert p.encode(0.0) == -1.0 and p.encode(10.0) == 1.0 and p.encode(5.0) == 0.0
    assert p.encode(-3.0) == -1.0 and p.encode(42.0) == 1.0  # clipped
    assert p.decode(0.5) == 7.5
    assert p.decode(-7.0) == 0.0 and p.decode(3.0) == 10.0  # clipped into the bounds
    for v in np.linspace(0.0, 10.0, 37):
        assert p.decode(p.encode(v)) == pytest.approx(v, rel=1e-11, abs=1e-12)  # 12 significant digits


def test_int_decode_truncates_so_the_upper_bound_needs_z_equal_1():
    p = Param("blocks", 16, "int", low=12.0, high=24.0)
    assert p.decode(0.99) == 23  # 23.94 truncated
    assert p.decode(1.0) == 24
    assert p.decode(-1.0) == 12
    assert p.decode(-0.9) == 12  # 12.6 truncated
    assert all(isinstance(p.decode(z), int) for z in (-1.0, 0.0, 1.0))
    for v in range(12, 25):
        assert p.decode(p.encode(v)) == v  # float noise never truncates v to v - 1


def test_log_scale_maps_the_geometric_middle_to_zero():
    p = Param("lr", 1e-4, "float", low=1e-6, high=1e-2, scale="log")
    assert p.encode(1e-4) == pytest.approx(0.0, abs=1e-12)
    assert p.encode(1e-5) == pytest.approx(-0.5)
    assert p.decode(0.5) == pytest.approx(1e-3)
    assert p.decode(1.0) == 1e-2 and p.decode(-1.0) == 1e-6
    q = Param("n", 10, "int", low=1.0, high=1000.0, scale="log")
    assert q.decode(1.0) == 1000 and q.decode(0.0) == 31  # sqrt(1000) = 31.6, truncated
    assert q.decode(q.encode(10)) == 10


def test_log_scale_from_yaml(tmp_path):
    path = write(tmp_path, ENTRY.replace("0.0", "0.001").replace("float\n", "float\n  scale : LOG\n"))
    space = SearchSpace.load(path)
    assert space.params[0].scale == "log"
    assert space.decode([0.0])["a"] == pytest.approx(math.sqrt(0.001))


def test_encode_decode_points_and_init_point():
    space = SearchSpace.from_yaml(GOOD)
    z = space.encode({"learning_rate": 0.0025025, "blocks": 18})
    np.testing.assert_allclose(z, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(space.init_point(), space.encode(space.init_values()))
    assert space.decode(np.array([1.0, -1.0])) == {"learning_rate": 0.005, "blocks": 12}
    with pytest.raises(KeyError, match="blocks"):
        space.encode({"learning_rate": 0.001})
    with pytest.raises(ValueError, match="3 coordinates"):
        space.decode([0.0, 0.0, 0.0])


def test_to_config_round_trips_through_yaml():
    import yaml

    space = SearchSpace.from_yaml(GOOD + "  scale : log\n")
    assert space.params[1].scale == "log"
    again = SearchSpace.from_yaml(yaml.safe_dump(space.to_config()))
    assert again == space
    assert "scale" not in space.to_config()["param_list"][0]
