"""Strategies alone on toy objectives: convergence, determinism, PSHE2's rule and fix, refusals."""

import json

import numpy as np
import pytest

from autoft.errors import AutoftError
from autoft.search import make_strategy
from autoft.search.pshe2 import PSHE2

CENTER = np.array([0.3, -0.4, 0.5])


def quadratic(z):
    # The tuner decodes (and so clips) every point; evaluate on the clipped point likewise.
    return float(np.sum((np.clip(z, -1.0, 1.0) - CENTER) ** 2))


def run(name, seed, popsize=8, rounds=10, x0=np.zeros(3), objective=quadratic, **options):
    strategy = make_strategy(name, x0, popsize, seed, **options)
    asked = []
    for _ in range(rounds):
        points = strategy.ask()
        asked.append(points)
        strategy.tell(points, [objective(p) for p in points])
        if strategy.should_stop():
            break
    return strategy, asked


@pytest.mark.parametrize("name", ["hazero", "pshe2"])
def test_strategy_approaches_the_quadratic_optimum_in_8_x_10(name):
    # Start at the origin, 0.71 from the optimum; 80 trials like a small PaddleHub search.
    bests = [run(name, seed)[0].best_reward for seed in range(10)]
    randoms = [run("random", seed)[0].best_reward for seed in range(10)]
    assert max(bests) < 0.05  # every run ends within ~0.22 (Euclidean) of the optimum
    assert np.median(bests) < 0.01  # typically within 0.1
    assert np.median(bests) < np.median(randoms) / 5


def test_best_point_is_the_lowest_told_and_matches_best_reward():
    strategy, asked = run("pshe2", 3)
    all_points = np.concatenate(asked)
    values = [quadratic(p) for p in all_points]
    assert strategy.best_reward == min(values)
    np.testing.assert_array_equal(strategy.best_point, all_points[int(np.argmin(values))])


@pytest.mark.parametrize("name", ["hazero", "pshe2", "random"])
def test_same_seed_same_asks_different_seed_different_asks(name):
    _, a = run(name, 7, rounds=4)
    np.random.seed(123)
    np.random.rand(17)  # other code using numpy's global RNG must not matter
    _, b = run(name, 7, rounds=4)
    _, c = run(name, 8, rounds=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])


@pytest.mark.parametrize("name", ["hazero", "pshe2", "random"])
def test_replay_from_a_json_journal_reproduces_the_next_ask(name):
    # The tuner resumes by replaying (points, rewards) read back from its journal.
    original, _ = run(name, 11, rounds=3)
    journal = []
    fresh = make_strategy(name, np.zeros(3), 8, 11)
    for _ in range(3):
        points = fresh.ask()
        rewards = [quadratic(p) for p in points]
        journal.append(json.dumps({"points": points.tolist(), "rewards": rewards}))
        fresh.tell(points, rewards)
    assert_replay_continues(name, 8, journal, original, rounds=3)


def assert_replay_continues(name, popsize, journal, original, rounds):
    """A fresh strategy (x0 = 0, seed 11) told the JSON journal's rounds asks what ``original`` asks next."""
    replayed = make_strategy(name, np.zeros(3), popsize, 11)
    for line in journal:
        record = json.loads(line)
        replayed.ask()
        replayed.tell(record["points"], record["rewards"])
    assert replayed.round == original.round == rounds
    np.testing.assert_array_equal(replayed.ask(), original.ask())
    assert replayed.best_reward == original.best_reward


def test_hazero_leaves_numpys_global_rng_alone():
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    run("hazero", 1, rounds=3)
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_ask_is_idempotent_until_told_and_tell_checks_its_input():
    strategy = make_strategy("pshe2", np.zeros(2), 4, 0)
    with pytest.raises(RuntimeError, match="without a pending ask"):
        strategy.tell(None, [0.0] * 4)
    points = strategy.ask()
    np.testing.assert_array_equal(strategy.ask(), points)
    with pytest.raises(ValueError, match="got 3 rewards for a round of 4"):
        strategy.tell(points, [0.0] * 3)
    with pytest.raises(ValueError, match="rewards must be finite"):
        strategy.tell(points, [0.0, float("nan"), 0.0, 0.0])
    with pytest.raises(ValueError, match="told points differ from the asked ones"):
        strategy.tell(points + 0.01, [0.0] * 4)
    strategy.tell(None, [1.0, 0.5, 0.5, 1.0])  # None = the pending points
    assert strategy.round == 1 and strategy.best_reward == 0.5
    np.testing.assert_array_equal(strategy.best_point, points[1])  # earliest of a tie
    assert not np.allclose(strategy.ask(), points)


def test_hazero_points_stay_in_the_cube_and_first_round_is_around_x0():
    x0 = np.array([-0.9, 0.2, 0.9])
    strategy = make_strategy("HAZero", x0, 16, 0)
    points = strategy.ask()
    assert points.shape == (16, 3)
    assert np.all(points >= -1.0) and np.all(points <= 1.0)
    assert np.all(np.abs(np.mean(points, axis=0) - x0) < 0.2)  # sigma0 = 0.2 around x0


def test_hazero_stops_when_a_whole_round_is_flat():
    strategy = make_strategy("hazero", np.zeros(3), 6, 0)
    assert not strategy.should_stop()
    strategy.tell(strategy.ask(), [1.0] * 6)  # every trial failed
    assert strategy.should_stop()
    assert strategy.stop_reasons


def test_hazero_refuses_one_parameter_or_popsize_one():
    with pytest.raises(
        AutoftError, match="HAZero \\(CMA-ES\\) needs at least 2 hyper-parameters, the search space has 1"
    ):
        make_strategy("hazero", np.zeros(1), 8, 0)
    with pytest.raises(AutoftError, match="HAZero \\(CMA-ES\\) needs --popsize of at least 2, got 1"):
        make_strategy("hazero", np.zeros(3), 1, 0)
    # PSHE2 and random run those cases.
    assert make_strategy("pshe2", np.zeros(1), 1, 0).ask().shape == (1, 1)
    assert make_strategy("random", np.zeros(1), 1, 0).ask().shape == (1, 1)


def test_make_strategy_names_and_options():
    with pytest.raises(
        AutoftError, match="unknown tuning strategy 'bayes'; choose one of: hazero, pshe2, random"
    ):
        make_strategy("bayes", np.zeros(2), 4, 0)
    with pytest.raises(AutoftError, match="unknown option\\(s\\) \\['sigma0'\\] for strategy pshe2"):
        make_strategy("pshe2", np.zeros(2), 4, 0, sigma0=0.3)
    with pytest.raises(AutoftError, match="popsize must be at least 1"):
        make_strategy("random", np.zeros(2), 0, 0)
    assert make_strategy(" PSHE2 ", np.zeros(2), 4, 0, alpha=0.3).alpha == 0.3
    assert make_strategy("hazero", np.zeros(2), 4, 0, sigma0=0.3).sigma == 0.3


def test_pshe2_initial_population_follows_the_u_rule():
    x0 = np.array([-0.5, 0.0, 0.8])
    strategy = PSHE2(x0, 5, seed=4)
    u = np.random.default_rng(4).uniform(-1.0, 1.0, size=(5, 3))
    expected = np.where(u >= 0, x0 + u * (1 - x0), x0 + u * (x0 + 1))
    np.testing.assert_allclose(strategy.ask(), expected, rtol=0, atol=1e-15)
    assert np.all(np.abs(expected) <= 1.0)


def test_pshe2_update_is_the_reference_formula():
    x0 = np.array([0.1, -0.2])
    strategy = PSHE2(x0, 3, seed=9)
    rng = np.random.default_rng(9)
    rng.uniform(-1, 1, size=(3, 2))  # the initial population's draws
    x = strategy.ask()
    rewards = [0.4, 0.2, 0.9]
    strategy.tell(x, rewards)
    # Round 1: personal bests are the positions, g = member 1; momentum starts at 0.
    alpha, eps, k = 0.5, 0.2, 1
    m = (1 - 3 * alpha / k) * 0 - alpha * (x - x) - alpha * (x - x[1])
    moved = x + alpha * m
    u = rng.uniform(-1, 1, size=(3, 2))
    expected = np.where(u >= 0, moved + u * eps * (1 - moved), moved + u * eps * (moved + 1))
    np.testing.assert_allclose(strategy.ask(), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(strategy.momentum, m)
    np.testing.assert_array_equal(strategy.global_best, x[1])


def displacements(legacy):
    # epsilon 0 removes the random perturbation, leaving only the momentum step.
    strategy = PSHE2(np.zeros(3), 6, seed=2, epsilon=0.0, legacy_shared_momentum=legacy)
    moves = []
    for _ in range(3):
        points = strategy.ask()
        strategy.tell(points, [quadratic(p) for p in points])
        moves.append(strategy.ask() - points)
    return moves


def test_pshe2_members_move_by_different_vectors():
    for move in displacements(legacy=False)[1:]:
        assert np.linalg.matrix_rank(move - move[0]) >= 2  # not one shared vector


def test_legacy_shared_momentum_reproduces_paddlehub_14_aliasing():
    moves = displacements(legacy=True)
    for move in moves:
        np.testing.assert_allclose(move, np.broadcast_to(move[0], move.shape), atol=1e-15)
    assert np.linalg.norm(moves[1][0]) > 0  # they do move, all by the same vector
