"""PruningMonitor: running trials' reports -> the pruner -> stop_trial, deterministically."""

from dataclasses import dataclass, field
from typing import List, Tuple

from autoft.tuner.pruners import PrunerConfig
from autoft.tuner.pruning import PruningMonitor, journal_curve, strategy_score
from autoft.tuner.records import FAILED, OK, PRUNED, TrialRecord


@dataclass
class Spec:
    attempt: int = 1


@dataclass
class Running:
    number: int
    round: int = 0
    intermediate: List[Tuple[int, float]] = field(default_factory=list)
    spec: Spec = field(default_factory=Spec)


def finished(number, curve, status=OK, round_=0, attempts=1):
    return TrialRecord(round=round_, idx=number, trial=number, point=[0.0], hparams={}, status=status,
                       score=0.5 if status == OK else None, intermediate=[list(p) for p in curve], attempts=attempts)


class Stops:
    def __init__(self):
        self.calls = []

    def __call__(self, number, status, reason):
        self.calls.append((number, status, reason))
        return True


def test_finished_trials_are_reference_and_a_laggard_is_stopped_once():
    m = PruningMonitor(PrunerConfig("median", min_trials=2), per_round=False)
    for n, curve in enumerate(([(10, 0.8), (20, 0.95)], [(10, 0.9), (20, 0.99)])):  # finished by themselves
        m.trial_finished(finished(n, curve))
    stops = Stops()
    laggard = Running(2, intermediate=[(10, 0.86)])
    m.on_tick([laggard], stops)
    assert stops.calls == []  # 0.86 >= 0.85, the median of 0.8 and 0.9: goes on
    laggard.intermediate.append((20, 0.5))
    m.on_tick([laggard], stops)
    m.on_tick([laggard], stops)  # the next tick before it is gone: not stopped twice
    assert [(n, s) for n, s, _ in stops.calls] == [(2, PRUNED)] and "step 20" in stops.calls[0][2]
    rec = finished(2, laggard.intermediate + [(30, 0.9)], status=PRUNED)  # one more report before it died
    m.trial_finished(rec)
    assert (rec.last_step, rec.last_score) == (20, 0.86)
    assert rec.intermediate == [[10, 0.86], [20, 0.5]]


def test_a_trial_that_finished_before_the_stop_keeps_its_record():
    m = PruningMonitor(PrunerConfig("median", min_trials=1), per_round=False)
    m.trial_finished(finished(0, [(10, 0.9)]))
    m.on_tick([Running(1, intermediate=[(10, 0.1)])], Stops())
    rec = finished(1, [(10, 0.1), (20, 0.2)])  # the backend says OK: it exited before the stop
    m.trial_finished(rec)
    assert rec.status == OK and rec.intermediate == [[10, 0.1], [20, 0.2]] and rec.last_step is None


def test_ticks_feed_trials_in_number_order():
    m = PruningMonitor(PrunerConfig("asha", grace=10, eta=2, min_trials=2), per_round=False)
    stops = Stops()
    m.on_tick([Running(1, intermediate=[(10, 0.4)]), Running(0, intermediate=[(10, 0.9)])], stops)
    # Trial 0 first: rung 0 holds [0.9] (undecided), then trial 1: [0.9, 0.4] -> 0.4 < 0.65 stopped.
    assert [n for n, _, _ in stops.calls] == [1]


def test_populationbased_compares_only_within_a_round():
    for per_round, expected in ((True, []), (False, [4])):
        m = PruningMonitor(PrunerConfig("median", min_trials=2), per_round=per_round)
        for n in range(2):
            m.trial_finished(finished(n, [(10, 0.95)], round_=0))
        for n in (2, 3):
            m.trial_finished(finished(n, [(10, 0.6)], round_=1))
        stops = Stops()
        m.on_tick([Running(4, round=1, intermediate=[(10, 0.6)])], stops)  # its round's median; below round 0's
        assert [n for n, _, _ in stops.calls] == expected


def test_a_retry_is_judged_on_its_own_reports():
    m = PruningMonitor(PrunerConfig("median", min_trials=1), per_round=False)
    m.trial_finished(finished(0, [(10, 0.9)]))
    m.on_tick([Running(1, intermediate=[(10, 0.9), (20, 0.9)])], Stops())  # attempt 1, then it crashed
    stops = Stops()
    m.on_tick([Running(1, intermediate=[(10, 0.2)], spec=Spec(attempt=2))], stops)  # fed, not skipped
    assert [n for n, _, _ in stops.calls] == [1]


def test_replayed_records_rebuild_the_history_without_stopping_anything():
    m = PruningMonitor(PrunerConfig("median", min_trials=1), per_round=False)
    m.trial_finished(finished(0, [(10, 0.9)]))
    pruned = finished(1, [(10, 0.1)], status=PRUNED)
    pruned.last_step, pruned.last_score = 10, 0.1
    m.trial_finished(pruned)  # journaled as PRUNED in the first run
    assert m.decisions == {} and (pruned.last_step, pruned.last_score) == (10, 0.1)
    stops = Stops()
    m.on_tick([Running(2, intermediate=[(10, 0.2)])], stops)
    assert [n for n, _, _ in stops.calls] == [2]  # median of 0.9 and 0.1 is 0.5


def test_journal_curve_and_what_the_strategy_is_told():
    assert journal_curve([(1, 0.1), (2, 0.2), (3, 0.3)], (2, 0.2, "why")) == [[1, 0.1], [2, 0.2]]
    assert journal_curve([(1, 0.1)], None) == [[1, 0.1]]
    assert strategy_score(OK, 0.8, 0.7) == 0.8
    assert strategy_score(PRUNED, None, 0.55) == 0.55
    assert strategy_score(FAILED, None, 0.9) is None
