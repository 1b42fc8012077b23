"""The auto strategy (GP + expected improvement in a trust region) and the tpe strategy (Optuna):
determinism, replay, the init point, edge cases and trials without a result."""

import json
import sys

import numpy as np
import pytest

from autoft.errors import AutoftError
from autoft.search import STRATEGIES, make_strategy
from autoft.search.auto import Auto, _normal_scores
from tests.test_search_strategies import assert_replay_continues

CENTER = np.array([0.3, -0.4, 0.5])


def quadratic(z):
    return float(np.sum((np.clip(z, -1.0, 1.0) - CENTER[: len(z)]) ** 2))


def run(name, seed, popsize=8, rounds=6, x0=np.zeros(3), objective=quadratic):
    strategy = make_strategy(name, x0, popsize, seed)
    asked = []
    for _ in range(rounds):
        points = strategy.ask()
        asked.append(points)
        strategy.tell(points, [objective(p) for p in points])
    return strategy, asked


def needs(name):
    if name == "tpe":
        pytest.importorskip("optuna")


def test_auto_and_tpe_are_registered():
    assert STRATEGIES == ("hazero", "pshe2", "random", "tpe", "auto")


@pytest.mark.parametrize("name", ["auto", "tpe"])
def test_same_seed_same_asks_different_seed_different_asks(name):
    needs(name)
    _, a = run(name, 7, rounds=4)
    np.random.seed(123)
    np.random.rand(17)  # other code using numpy's global RNG must not matter
    _, b = run(name, 7, rounds=4)
    _, c = run(name, 8, rounds=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[1], c[1])


@pytest.mark.parametrize("name", ["auto", "tpe"])
def test_replay_of_a_json_journal_with_failed_trials_reproduces_the_next_ask(name):
    # The tuner resumes by replaying (points, rewards) read back from its journal into a fresh
    # strategy; trials without a result (None) are part of what is replayed.
    needs(name)
    journal = []
    original = make_strategy(name, np.zeros(3), 6, 11)
    for k in range(4):
        points = original.ask()
        rewards = [None if (k == 1 and i % 3 == 0) else quadratic(p) for i, p in enumerate(points)]
        journal.append(json.dumps({"points": points.tolist(), "rewards": rewards}))
        original.tell(points, rewards)
    assert_replay_continues(name, 6, journal, original, rounds=4)


@pytest.mark.parametrize("name", ["auto", "tpe"])
def test_the_init_point_is_the_first_trial(name):
    needs(name)
    x0 = np.array([-0.7, 0.2, 0.9])
    points = make_strategy(name, x0, 5, 0).ask()
    np.testing.assert_allclose(points[0], x0, rtol=0, atol=1e-12)
    assert np.all(np.abs(points) <= 1.0)


def test_auto_first_round_is_the_init_point_and_a_latin_hypercube():
    points = make_strategy("auto", np.zeros(2), 9, 3).ask()
    cells = np.floor((points[1:] + 1.0) / 2.0 * 8).astype(int)
    for d in range(2):  # one point in each of the 8 strata of every coordinate
        assert sorted(cells[:, d]) == list(range(8))


def test_auto_approaches_the_optimum_and_beats_random():
    bests = [run("auto", seed, rounds=8)[0].best_reward for seed in range(5)]
    randoms = [run("random", seed, rounds=8)[0].best_reward for seed in range(5)]
    assert max(bests) < 0.01  # within 0.1 (Euclidean) of the optimum in 64 trials
    assert np.median(bests) < np.median(randoms) / 10


def test_auto_exploits_a_good_init_value():
    # Init 0.05 from the optimum: after round 0 the trust region sits around it.
    x0 = CENTER + 0.05
    strategy, asked = run("auto", 0, popsize=6, rounds=3, x0=x0)
    later = np.concatenate(asked[1:])
    assert np.median(np.linalg.norm(later - x0, axis=1)) < 0.4
    assert strategy.best_reward < quadratic(x0)


@pytest.mark.parametrize("name", ["auto", "tpe"])
def test_popsize_one_and_one_dimension(name):
    needs(name)
    strategy, asked = run(name, 2, popsize=1, rounds=12, x0=np.array([0.9]))
    assert all(a.shape == (1, 1) for a in asked)
    assert asked[0][0, 0] == pytest.approx(0.9)
    if name == "auto":
        assert strategy.best_reward < 0.01  # 1-D, optimum at 0.3, from 0.9 in 12 trials


def test_auto_is_honest_with_trials_without_a_result():
    # Trials with z0 > 0.6 "diverge" (no result); the optimum (0.3, -0.4, 0.5) is outside that region.
    strategy = make_strategy("auto", np.array([0.9, 0.0, 0.0]), 8, 5)
    asked = []
    for _ in range(6):
        points = strategy.ask()
        asked.append(points)
        strategy.tell(points, [None if p[0] > 0.6 else quadratic(p) for p in points])
    assert strategy.best_point[0] <= 0.6 and np.isfinite(strategy.best_reward)
    late = np.concatenate(asked[3:])
    assert np.mean(late[:, 0] > 0.6) < 0.2  # the search left the failing region
    assert strategy.best_reward < 0.05


def test_a_round_of_only_failed_trials_keeps_auto_going():
    strategy = make_strategy("auto", np.zeros(2), 4, 0)
    strategy.tell(strategy.ask(), [float("nan")] * 4)
    assert strategy.best_point is None and strategy.best_reward == float("inf")
    strategy.tell(strategy.ask(), [1.0, 0.5, None, 0.7])
    assert strategy.best_reward == 0.5
    assert strategy.ask().shape == (4, 2)


def test_hazero_and_pshe2_still_refuse_missing_rewards():
    for name in ("hazero", "pshe2"):
        strategy = make_strategy(name, np.zeros(2), 4, 0)
        points = strategy.ask()
        with pytest.raises(ValueError, match="rewards must be finite"):
            strategy.tell(points, [0.1, None, 0.2, 0.3])
    auto = make_strategy("auto", np.zeros(2), 2, 0)
    with pytest.raises(ValueError, match="rewards must be finite"):
        auto.tell(auto.ask(), [0.1, float("-inf")])


def test_normal_scores_rank_ties_and_missing_last():
    scores = _normal_scores(np.array([3.0, 1.0, np.nan, 1.0, np.nan, 100.0]))
    assert scores[1] == scores[3] < scores[0] < scores[5] < scores[2] == scores[4]
    assert abs(np.sum(scores)) < 1e-9  # centred: the ranks are symmetric quantiles


def test_auto_has_no_options():
    with pytest.raises(AutoftError, match="unknown option\\(s\\) \\['sigma0'\\] for strategy auto"):
        make_strategy("auto", np.zeros(2), 4, 0, sigma0=0.3)
    assert isinstance(make_strategy(" AUTO ", np.zeros(2), 4, 0), Auto)


def test_tpe_without_optuna_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` raise ImportError
    with pytest.raises(AutoftError, match=r"tpe needs Optuna, which is not installed: pip install 'autoft\[tpe\]'"):
        make_strategy("tpe", np.zeros(2), 4, 0)


def test_auto_with_snap_never_repeats_a_grid_point_until_the_grid_is_used_up():
    from autoft.search.space import SearchSpace

    space = SearchSpace.from_config({"param_list": [
        {"name": "lr", "type": "choice", "values": [1, 2, 3, 4], "init_value": 2},
        {"name": "seq", "type": "choice", "values": [64, 128, 256], "init_value": 128},
    ]})

    def objective(z):
        v = space.decode(z)
        return abs(v["lr"] - 3) + abs(v["seq"] - 256) / 64

    def trials(snap):
        s = make_strategy("auto", space.init_point(), 4, seed=5, snap=snap)
        runs = []
        for _ in range(3):  # 12 trials on a grid of 12 points
            points = s.ask()
            runs += [tuple(space.decode(p).values()) for p in points]
            s.tell(points, [objective(p) for p in points])
        return runs

    with_snap = trials(space.snap)
    assert with_snap[0] == (2, 128)  # the init value first
    assert len(set(with_snap)) == 12  # every grid point once
    assert len(set(trials(None))) < 12  # without snap the same trial is proposed again
    assert trials(space.snap) == with_snap  # deterministic for a seed
    # HAZero, PSHE2 and random ignore snap: the same points with and without it.
    for name in ("hazero", "pshe2", "random"):
        a = make_strategy(name, space.init_point(), 4, seed=5).ask()
        b = make_strategy(name, space.init_point(), 4, seed=5, snap=space.snap).ask()
        assert np.array_equal(a, b), name


def test_snap_is_what_the_trial_runs():
    from autoft.search.space import SearchSpace

    space = SearchSpace.from_config({"param_list": [
        {"name": "x", "type": "float", "init_value": 0.5, "greater_than": 0.0, "lower_than": 1.0},
        {"name": "n", "type": "int", "init_value": 3, "greater_than": 1, "lower_than": 9},
        {"name": "c", "type": "choice", "values": ["a", "b"], "init_value": "a"},
    ]})
    z = np.array([[0.1234, -0.3, 0.9], [2.0, 0.99, -0.2]])
    snapped = space.snap(z)
    for row, s in zip(z, snapped):
        assert space.decode(row) == space.decode(s)
        assert np.array_equal(space.snap(s), s)  # a fixed point
    assert snapped[0, 0] == pytest.approx(0.1234) and snapped[1, 0] == 1.0  # floats stay, clipped
    assert snapped[0, 2] == 0.5  # the centre of the choice's bin


@pytest.mark.parametrize("scale,low,high", [("linear", 12, 24), ("linear", 1, 17), ("log", 2, 512), ("linear", -5, 5)])
def test_int_snap_equals_encode_of_decode(scale, low, high):
    from autoft.search.space import Param, SearchSpace

    space = SearchSpace([Param("n", low, "int", low, high, scale)])
    z = np.concatenate([np.linspace(-1.2, 1.2, 2001), [-1.0, 1.0, 0.0]])
    expected = np.array([space.params[0].encode(space.params[0].decode(v)) for v in z])
    assert np.allclose(space.snap(z[:, None])[:, 0], expected, atol=1e-12)
