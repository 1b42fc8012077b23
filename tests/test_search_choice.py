"""type: choice in hparam.yaml: parsing, errors with file:line, the bin encoding, every strategy, argv."""

import textwrap

import numpy as np
import pytest
import yaml

from autoft.errors import AutoftError
from autoft.search import Param, SearchSpace, make_strategy

SPACE = """\
param_list:
- name : learning_rate
  init_value : 0.00005
  type : float
  greater_than : 0.000005
  lower_than : 0.005
- name : batch_size
  type : choice
  values : [16, 32]
  init_value : 32
- name : schedule
  type : choice
  values : [linear, cosine, "none"]
  init_value : cosine
"""


def load(tmp_path, text):
    path = tmp_path / "hparam.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return SearchSpace.load(path), path


def test_choice_loads_numbers_and_strings(tmp_path):
    space, _ = load(tmp_path, SPACE)
    lr, bs, sched = space.params
    assert bs == Param("batch_size", 32, "choice", values=(16, 32))
    assert sched.values == ("linear", "cosine", "none") and sched.init_value == "cosine"
    assert space.init_values() == {"learning_rate": 5e-05, "batch_size": 32, "schedule": "cosine"}
    assert space.decode(space.init_point()) == space.init_values()
    # init_value 16.0 is the value 16 as written in values (an int on the command line).
    space2, _ = load(tmp_path, SPACE.replace("init_value : 32", "init_value : 16.0"))
    assert space2.params[1].init_value == 16 and isinstance(space2.params[1].init_value, int)


def test_choice_bins_split_the_interval_equally():
    p = Param("s", "b", "choice", values=("a", "b", "c"))
    # Bin centres -2/3, 0, 2/3; edges at -1/3 and 1/3; beyond the cube clips to the end bins.
    assert [p.encode(v) for v in p.values] == pytest.approx([-2 / 3, 0.0, 2 / 3])
    zs = [-5.0, -1.0, -0.34, -1 / 3 + 1e-12, 0.3, 1 / 3 + 1e-12, 0.99, 1.0, 7.0]
    assert [p.decode(z) for z in zs] == ["a", "a", "a", "b", "b", "c", "c", "c", "c"]
    assert [p.decode(p.encode(v)) for v in p.values] == list(p.values)
    two = Param("bs", 32, "choice", values=(16, 32))
    assert two.decode(-1e-9) == 16 and two.decode(0.0) == 32
    with pytest.raises(ValueError, match="non-finite"):
        p.decode(float("nan"))
    with pytest.raises(ValueError, match="'d' is not one of 's'"):
        p.encode("d")
    # An even spread of z gives each value an equal share: no value is favoured by the encoding.
    counts = np.bincount([p.values.index(p.decode(z)) for z in np.linspace(-1, 1, 3001)[:-1]])
    assert counts.tolist() == [1000, 1000, 1000]


def test_to_config_round_trips_a_choice(tmp_path):
    space, _ = load(tmp_path, SPACE)
    again = SearchSpace.from_yaml(yaml.safe_dump(space.to_config()))
    assert again == space


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("  values : [16, 32]\n", "", ":7: param_list entry 2 (batch_size): missing key 'values'"),
        ("  values : [16, 32]\n", "  values : 16\n", ":9: param_list entry 2 (batch_size): 'values' must be a non-empty list"),
        ("  values : [16, 32]\n", "  values : []\n", ":9: param_list entry 2 (batch_size): 'values' must be a non-empty list"),
        ("  values : [16, 32]\n", "  values : [16, 32, 16]\n", ":9: param_list entry 2 (batch_size): 'values' lists 16 twice"),
        ("  values : [16, 32]\n", "  values : [16, a]\n", ":9: param_list entry 2 (batch_size): 'values' must be all numbers or all strings"),
        ("  values : [16, 32]\n", "  values : [16, [32]]\n", ":9: param_list entry 2 (batch_size): 'values' may hold only finite numbers or strings"),
        ("  values : [16, 32]\n", "  values : [true, false]\n", ":9: param_list entry 2 (batch_size): 'values' may hold only finite numbers or strings .quote true"),
        ("  init_value : 32\n", "  init_value : 64\n", ":10: param_list entry 2 (batch_size): init_value 64 is not one of the values \\[16, 32\\]"),
        ("  init_value : cosine\n", "  init_value : '32'\n", ":14: param_list entry 3 (schedule): init_value '32' is not one of the values"),
        ("  values : [16, 32]\n", "  values : [16, 32]\n  greater_than : 1\n", ":10: param_list entry 2 (batch_size): unknown key 'greater_than' for type: choice; expected name, init_value, type, values .a choice has no bounds"),
        ("  lower_than : 0.005\n", "  lower_than : 0.005\n  values : [1, 2]\n", ":7: param_list entry 1 (learning_rate): 'values' is only read for type: choice"),
    ],
)
def test_choice_errors_name_file_line_entry_and_problem(tmp_path, old, new, expected):
    import re

    assert old in SPACE
    path = tmp_path / "hparam.yaml"
    path.write_text(SPACE.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(AutoftError) as info:
        SearchSpace.load(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    label_escaped = re.sub(r"\((\w+)\)", r"\\(\1\\)", expected)  # "(batch_size)" is literal text
    assert re.match(label_escaped, msg[len(str(path)):]), msg


def test_int_keeps_paddlehubs_truncation_next_to_a_choice(tmp_path):
    space, _ = load(tmp_path, SPACE + "- name : blocks\n  init_value : 16\n  type : int\n  greater_than : 12\n  lower_than : 24\n")
    blocks = space.params[3]
    assert blocks.decode(0.99) == 23 and blocks.decode(1.0) == 24 and blocks.decode(-0.84) == 12


@pytest.mark.parametrize("name", ["hazero", "pshe2", "random", "auto"])
def test_every_strategy_searches_a_choice_and_only_its_values_come_out(tmp_path, name):
    space, _ = load(tmp_path, SPACE)
    strategy = make_strategy(name, space.init_point(), 6, seed=3)
    seen = set()
    for _ in range(4):
        points = strategy.ask()
        decoded = [space.decode(z) for z in points]
        seen |= {(d["batch_size"], d["schedule"]) for d in decoded}
        # The objective prefers batch 16 with the cosine schedule.
        strategy.tell(points, [(d["batch_size"] == 32) + (d["schedule"] != "cosine") * 0.5 for d in decoded])
    assert {b for b, _ in seen} <= {16, 32} and {s for _, s in seen} <= {"linear", "cosine", "none"}
    assert len(seen) >= 2  # the strategy moved between values
    best = space.decode(strategy.best_point)
    assert best["schedule"] == "cosine"


def test_choice_value_reaches_the_trial_as_name_equals_value(tmp_path):
    from autoft.tuner.evaluators import make_evaluator

    space, _ = load(tmp_path, SPACE)
    argv = make_evaluator("fulltrail", 2).trial_argv(["python", "-u", "train.py"], tmp_path / "model-0",
                                                    space.decode(space.init_point()), ["--dataset=demo"], None)
    assert argv[4:7] == ["--learning_rate=5e-05", "--batch_size=32", "--schedule=cosine"]
