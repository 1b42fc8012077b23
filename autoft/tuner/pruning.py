"""The tuner's side of ``--pruner``: running trials' intermediate results -> the pruner -> stop_trial.

The search core (autoft.tuner.search_loop, its TrialWatcher seam) calls ``on_tick(running,
stop_trial)`` about once a second with the trials that run now and everything each has reported
so far, and ``trial_finished(record)`` when a trial ends, before its record is journaled. Points not
seen before are handed to the pruner in trial-number order, each trial's in report order; a
trial it names is stopped with status PRUNED (its process group ended, its slot free for the
next trial at once). A trial that ended by itself has its unseen points fed at ``trial_finished``,
before the next trial's, so with one slot the pruner sees the reports in trial order.

Which trials a trial is compared with: with ``fulltrail`` every trial of the search (one pruner
for the whole search); with ``populationbased`` only the trials of its own round, since a round
k >= 1 warm-starts every trial from a donor and its step 100 is not a from-scratch trial's step 100.

A resumed search re-feeds the journaled trials' curves (``trial_finished`` for each, in trial
order, before any trial runs), so the trials that still run are judged against the same history;
the journaled PRUNED trials stay PRUNED (they are not run again).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from autoft.tuner.pruners import Pruner, PrunerConfig, make_pruner
from autoft.tuner.records import OK, PRUNED

Curve = Sequence[Tuple[int, float]]
StopTrial = Callable[[int, str, str], bool]


class PruningMonitor:
    """The search's TrialWatcher for ``--pruner``: feeds intermediate results to the pruner and stops
    the trials it names (see the module doc). A trial's reports are keyed by (trial number, attempt),
    so a retried attempt starts a new curve while the crashed attempt's reports stay as reference."""

    def __init__(self, config: PrunerConfig, per_round: bool):
        self.config = config
        self.per_round = per_round
        self._pruners: Dict[Optional[int], Pruner] = {}
        self._seen: Dict[Tuple[int, int], int] = {}  # (trial, attempt) -> points already fed
        self.decisions: Dict[int, Tuple[int, float, str]] = {}  # trial -> (step, best score, reason)

    def pruner(self, round_: int) -> Pruner:
        """The pruner that judges the trials of round ``round_`` (one per round with populationbased)."""
        key = round_ if self.per_round else None
        if key not in self._pruners:
            self._pruners[key] = make_pruner(self.config)
        return self._pruners[key]

    def on_tick(self, running: Iterable, stop_trial: StopTrial) -> None:
        """Feed the running trials' new points; stop (PRUNED) each trial the pruner names."""
        for trial in sorted(running, key=lambda t: t.number):
            if trial.number in self.decisions:
                continue  # stopped already; its process group is being ended
            attempt = getattr(trial.spec, "attempt", 1)
            decision = self._feed(trial.number, attempt, trial.round, trial.intermediate)
            if decision is not None:
                self.decisions[trial.number] = decision
                stop_trial(trial.number, PRUNED, decision[2])

    def trial_finished(self, rec) -> None:
        """A trial ended (or is replayed from the journal, before any trial runs): feed the points not
        seen yet. A PRUNED trial's record keeps its curve up to the step it was pruned at and, as its
        last (step, score), that step and its best score then (what the strategy is told)."""
        decision = self.decisions.get(rec.trial)
        curve = [(int(s), float(v)) for s, v in rec.intermediate]
        if decision is None:
            self._feed(rec.trial, rec.attempts, rec.round, curve)  # a late "prune" of a finished trial is moot
        elif rec.status == PRUNED:
            rec.intermediate = journal_curve(curve, decision)
            rec.last_step, rec.last_score = decision[0], decision[1]

    def _feed(self, number: int, attempt: int, round_: int, curve: Curve) -> Optional[Tuple[int, float, str]]:
        pruner = self.pruner(round_)
        start = self._seen.get((number, attempt), 0)
        self._seen[(number, attempt)] = len(curve)
        for step, score in list(curve)[start:]:
            reason = pruner.report((number, attempt), step, score)
            if reason:
                return step, max(s for t, s in curve if t <= step), reason
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
