"""PruningMonitor: running trials' reports -> the pruner -> stop_trial, deterministically."""

from dataclasses import dataclass, field
from typing import List, Tuple

from autoft.tuner.pruners import PRUNED, PrunerConfig
from autoft.tuner.pruning import PruningMonitor, journal_curve, strategy_score


@dataclass
class Running:
    number: int
    intermediate: List[Tuple[int, float]] = field(default_factory=list)


class Stops:
    def __init__(self):
        self.calls = []

    def __call__(self, number, status, reason):
        self.calls.append((number, status, reason))
        return True


def test_finished_trials_are_reference_and_a_laggard_is_stopped_once():
    m = PruningMonitor(PrunerConfig("median", min_trials=2), per_round=False)
    m.begin_round(0)
    for n, curve in enumerate(([(10, 0.8), (20, 0.95)], [(10, 0.9), (20, 0.99)])):  # finished by themselves
        assert m.on_finish(n, curve) is None
    stops = Stops()
    laggard = Running(2, [(10, 0.86)])
    m.on_tick([laggard], stops)
    assert stops.calls == []  # 0.86 >= 0.85, the median of 0.8 and 0.9: goes on
    laggard.intermediate.append((20, 0.5))
    m.on_tick([laggard], stops)
    m.on_tick([laggard], stops)  # the next tick before it is gone: not stopped twice
    assert [(n, s) for n, s, _ in stops.calls] == [(2, PRUNED)] and "step 20" in stops.calls[0][2]
    step, best, reason = m.on_finish(2, laggard.intermediate + [(30, 0.9)])
    assert (step, best) == (20, 0.86) and reason == stops.calls[0][2]
    assert journal_curve(laggard.intermediate + [(30, 0.9)], (step, best, reason)) == [[10, 0.86], [20, 0.5]]


def test_ticks_feed_trials_in_number_order():
    m = PruningMonitor(PrunerConfig("asha", grace=10, eta=2, min_trials=2), per_round=False)
    stops = Stops()
    m.on_tick([Running(1, [(10, 0.4)]), Running(0, [(10, 0.9)])], stops)
    # Trial 0 first: rung 0 holds [0.9] (undecided), then trial 1: [0.9, 0.4] -> 0.4 < 0.65 stopped.
    assert [n for n, _, _ in stops.calls] == [1]


def test_populationbased_compares_only_within_a_round():
    for per_round, expected in ((True, []), (False, [4])):
        m = PruningMonitor(PrunerConfig("median", min_trials=2), per_round=per_round)
        m.begin_round(0)
        for n in range(2):
            m.on_finish(n, [(10, 0.95)])
        m.begin_round(1)
        stops = Stops()
        for n in (2, 3):
            m.on_finish(n, [(10, 0.6)])
        m.on_tick([Running(4, [(10, 0.6)])], stops)  # = its round's median; below round 0's
        assert [n for n, _, _ in stops.calls] == expected


def test_a_retry_is_judged_on_its_own_reports():
    m = PruningMonitor(PrunerConfig("median", min_trials=1), per_round=False)
    m.on_finish(0, [(10, 0.9)])
    m.on_finish(1, [(10, 0.9), (20, 0.9)])  # crashed after step 20, say
    m.restart(1)
    stops = Stops()
    m.on_tick([Running(1, [(10, 0.2)])], stops)  # the new attempt's first point is fed, not skipped
    assert [n for n, _, _ in stops.calls] == [1]


def test_replay_rebuilds_the_history_without_stopping_anything():
    m = PruningMonitor(PrunerConfig("median", min_trials=1), per_round=False)
    m.replay(0, [(10, 0.9)])
    m.replay(1, [(10, 0.1)])  # journaled as PRUNED in the first run
    assert m.decisions == {}
    stops = Stops()
    m.on_tick([Running(2, [(10, 0.2)])], stops)
    assert [n for n, _, _ in stops.calls] == [2]  # median of 0.9 and 0.1 is 0.5


def test_what_the_strategy_is_told():
    assert strategy_score("OK", 0.8, 0.7) == 0.8
    assert strategy_score(PRUNED, None, 0.55) == 0.55
    assert strategy_score("FAILED", None, 0.9) is None
    assert not PruningMonitor(PrunerConfig("none"), per_round=False).active
