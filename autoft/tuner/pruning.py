"""The tuner's side of ``--pruner``: running trials' intermediate results -> the pruner -> stop_trial.

The backend calls ``on_tick(running, stop_trial)`` about once a second with the trials that run
now and everything each has reported so far, and ``on_finish`` when a trial ends. Points not
seen before are handed to the pruner in trial-number order, each trial's in report order; a
trial it names is stopped with status PRUNED (its process group ended, its slot free for the
next trial at once). A trial that ended by itself has its unseen points fed at ``on_finish``,
before the next trial's, so with one slot the pruner sees the reports in trial order.

Which trials a trial is compared with: with ``fulltrail`` every trial of the search (one pruner
for the whole search); with ``populationbased`` only the trials of its own round, since a round
k >= 1 warm-starts every trial from a donor and its step 100 is not a from-scratch trial's step 100.

A resumed search re-feeds the journaled trials' curves (``replay``, in journal order), so the
trials that still run are judged against the same history, and the journaled PRUNED trials stay
PRUNED (they are not run again).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from autoft.tuner.pruners import Pruner, PrunerConfig, make_pruner
from autoft.tuner.records import OK, PRUNED

Curve = Sequence[Tuple[int, float]]
StopTrial = Callable[[int, str, str], bool]


class PruningMonitor:
    """Feeds intermediate results to a pruner and stops the trials it names (see the module doc)."""

    def __init__(self, config: PrunerConfig, per_round: bool):
        self.config = config
        self.per_round = per_round
        self.pruner: Pruner = make_pruner(config)
        self.round: Optional[int] = None
        self._seen: Dict[int, int] = {}  # trial number -> points already fed
        self._attempt: Dict[int, int] = {}  # trial number -> attempt (a retry starts a new curve)
        self.decisions: Dict[int, Tuple[int, float, str]] = {}  # trial -> (step, best score, reason)

    @property
    def active(self) -> bool:
        """False for ``--pruner none``: the tuner need not poll at all."""
        return self.config.kind != "none"

    def begin_round(self, k: int) -> None:
        """A new round starts; with populationbased its trials are compared only with each other."""
        if self.per_round and self.round is not None and k != self.round:
            self.pruner = make_pruner(self.config)
        self.round = k

    def replay(self, number: int, curve: Curve) -> None:
        """Feed a journaled trial's curve (resume), without stopping anything."""
        self._feed(number, curve)

    def restart(self, number: int) -> None:
        """Trial ``number`` runs again (a retry): its new attempt's reports are a new curve."""
        self._attempt[number] = self._attempt.get(number, 1) + 1
        self._seen[number] = 0

    def on_tick(self, running: Iterable, stop_trial: StopTrial) -> None:
        """Feed the running trials' new points; stop (PRUNED) each trial the pruner names."""
        for trial in sorted(running, key=lambda t: t.number):
            if trial.number in self.decisions:
                continue  # stopped already; its process group is being ended
            decision = self._feed(trial.number, trial.intermediate)
            if decision is not None:
                self.decisions[trial.number] = decision
                stop_trial(trial.number, PRUNED, decision[2])

    def on_finish(self, number: int, curve: Curve) -> Optional[Tuple[int, float, str]]:
        """A trial ended: feed its unseen points; returns the pruning decision if it was pruned."""
        if number not in self.decisions:
            self._feed(number, curve)  # a late "prune" for a trial that finished by itself is moot
        return self.decisions.get(number)

    def _feed(self, number: int, curve: Curve) -> Optional[Tuple[int, float, str]]:
        key = (number, self._attempt.get(number, 1))
        start = self._seen.get(number, 0)
        self._seen[number] = len(curve)
        for step, score in list(curve)[start:]:
            reason = self.pruner.report(key, step, score)
            if reason:
                best = max(s for t, s in curve if t <= step)
                return step, best, reason
        return None


def journal_curve(curve: Curve, decision: Optional[Tuple[int, float, str]]) -> List[List[float]]:
    """What the journal keeps of a trial's curve: all of it, or for a pruned trial the points up to the
    step it was pruned at (reports that arrived while it was being stopped were never judged)."""
    last = decision[0] if decision is not None else None
    return [[step, score] for step, score in curve if last is None or step <= last]


def strategy_score(status: str, score: Optional[float], last_score: Optional[float]) -> Optional[float]:
    """The score the strategy is told (its reward is 1 - this; None: told reward 1, as a failure).

    An OK trial: its final score. A PRUNED trial: its best intermediate score when it was stopped,
    a real measurement of that point, lower than the trial would have reached and below the peers
    it was judged against, so it can only steer the strategy away from where it lies. Anything else
    (FAILED): None, PaddleHub's reward 1.
    """
    if status == PRUNED:
        return last_score
    return score if status == OK else None


def curve_of(record: dict) -> List[Tuple[int, float]]:
    """A journaled trial's intermediate results as (step, score) pairs ([] when it reported none)."""
    return [(int(s), float(v)) for s, v in record.get("intermediate") or []]
