"""Early stopping of trials that fall behind: ``--pruner none|median|asha``. Pure decisions, no I/O.

A trial reports intermediate scores with ``autoft.report_intermediate_result(score, step)``
(higher is better, ``step`` any increasing progress count that means the same in every trial,
e.g. train.py's optimizer steps). The tuner feeds every report to one pruner object, in the order
it reads them, and stops the trial whose report makes ``report`` return a reason. A pruner only
looks at the reports it was given, so the same reports in the same order give the same decisions;
the tuner journals the decisions, and a resumed search re-feeds the journaled trials' curves.

Both rules compare a trial's **best score so far** (its highest report at a step <= s), not its
latest one: train.py's final score is its best dev evaluation, so this is the quantity the
search ranks trials by, and one noisy evaluation does not end a trial that was doing well.

- ``median`` (Optuna's MedianPruner): at each report (step s >= ``grace``) the trial is stopped
  when its best so far is strictly below the median of the other trials' best-so-far at s,
  counting only the trials that have reached s (reported at a step >= s) — finished, pruned or
  still running — and only once there are at least ``min_trials`` of them.
- ``asha`` (asynchronous successive halving, as Ray Tune's ASHA scheduler): rungs at
  ``grace * eta**k`` (k = 0, 1, ...). The first report at a step >= a rung records the trial's
  best so far there; the trial goes on only if that value is within the top 1/``eta`` of all
  values recorded at the rung so far (itself included): it is stopped when strictly below their
  (1 - 1/eta) quantile, once the rung holds at least ``min_trials`` values.

``max_step`` (optional) is the trials' last step: a report there or later is recorded but never
judged, since the trial is about to finish (stopping it would only throw its result away).
``grace`` defaults to the step of the first report the pruner receives (with train.py's
``--eval_interval N``: its first evaluation), so the first rung and the first median
comparison sit at the first point every trial can be compared at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from autoft.tuner.records import PRUNED  # noqa: F401 - the status of a trial a pruner stopped

PRUNERS = ("none", "median", "asha")
Curve = List[Tuple[int, float]]  # (step, score) in report order


@dataclass(frozen=True)
class PrunerConfig:
    """The ``--pruner`` flags. ``grace`` None: the step of the first report received."""

    kind: str = "none"  # none | median | asha
    grace: Optional[int] = None  # median: no decision before this step; asha: the first rung
    eta: float = 3.0  # asha: reduction factor (rungs grow by eta, the top 1/eta go on)
    min_trials: int = 3  # trials to compare with at a step (median) / values at a rung (asha)
    max_step: Optional[int] = None  # the trials' last step: no decision there or later (the trial is done)

    def __post_init__(self) -> None:
        if self.kind not in PRUNERS:
            raise ValueError(f"--pruner: expected one of {', '.join(PRUNERS)}, found {self.kind!r}")
        if self.grace is not None and self.grace < 1:
            raise ValueError(f"--prune_grace must be at least 1 step, found {self.grace}")
        if not self.eta > 1:
            raise ValueError(f"--prune_eta must be greater than 1, found {self.eta}")
        if self.min_trials < 1:
            raise ValueError(f"--prune_min_trials must be at least 1, found {self.min_trials}")
        if self.max_step is not None and self.max_step < 1:
            raise ValueError(f"--prune_max_step must be at least 1 step, found {self.max_step}")

    def to_json(self) -> dict:
        """The settings as journaled in the search header."""
        return asdict(self)


def best_so_far(curve: Sequence[Tuple[int, float]], step: int) -> Optional[float]:
    """The highest score reported at a step <= ``step``, or None if there is none."""
    scores = [s for t, s in curve if t <= step]
    return max(scores) if scores else None


class Pruner:
    """Base: keeps every trial's curve; ``report`` returns None (go on) or why to stop the trial.

    ``key`` identifies one run of a trial (e.g. ``(trial number, attempt)``): a retried attempt
    starts a new curve, while the crashed attempt's reports stay as reference data. A report
    whose step does not exceed the key's previous one is ignored (returns None).
    """

    def __init__(self, config: PrunerConfig):
        self.config = config
        self.curves: Dict[Hashable, Curve] = {}
        self.grace: Optional[int] = config.grace

    def report(self, key: Hashable, step: int, score: float) -> Optional[str]:
        """Record one intermediate result; the reason to stop ``key`` now, or None."""
        curve = self.curves.setdefault(key, [])
        if curve and step <= curve[-1][0]:
            return None
        curve.append((int(step), float(score)))
        if self.grace is None:
            self.grace = max(1, int(step))
        if self.config.max_step is not None and step >= self.config.max_step:
            return None  # its last evaluation: stopping it now would only lose its result (still reference data)
        return self._decide(key, int(step))

    def _decide(self, key: Hashable, step: int) -> Optional[str]:
        return None


class MedianPruner(Pruner):
    """Stop a trial whose best so far is below the median of the others' at the same step."""

    def _decide(self, key: Hashable, step: int) -> Optional[str]:
        if step < self.grace:
            return None
        others = []
        for other, curve in self.curves.items():
            if other == key or curve[-1][0] < step:
                continue  # itself, or a trial that has not reached this step
            value = best_so_far(curve, step)
            if value is not None:
                others.append(value)
        if len(others) < self.config.min_trials:
            return None
        mine = best_so_far(self.curves[key], step)
        median = float(np.median(others))
        if mine < median:
            return (f"pruned (median) at step {step}: best score {mine:.6g} < median {median:.6g} of "
                    f"{len(others)} other trial(s) at that step")
        return None


class AshaPruner(Pruner):
    """Asynchronous successive halving: at each rung only the top 1/eta recorded so far go on."""

    def __init__(self, config: PrunerConfig):
        super().__init__(config)
        self.rungs: Dict[int, List[float]] = {}  # rung index -> values recorded there, in order
        self.reached: Dict[Hashable, int] = {}  # key -> rungs it has passed (the next rung's index)

    def rung_step(self, k: int) -> float:
        """The step of rung ``k``: grace * eta**k."""
        return self.grace * self.config.eta ** k

    def _decide(self, key: Hashable, step: int) -> Optional[str]:
        k = self.reached.get(key, 0)
        while step >= self.rung_step(k):
            value = best_so_far(self.curves[key], step)
            recorded = self.rungs.setdefault(k, [])
            recorded.append(value)
            k += 1
            self.reached[key] = k
            if len(recorded) < self.config.min_trials:
                continue
            cutoff = float(np.quantile(recorded, 1 - 1 / self.config.eta))
            if value < cutoff:
                return (f"pruned (asha) at step {step}, rung {k - 1} (step {self.rung_step(k - 1):g}): "
                        f"best score {value:.6g} < {cutoff:.6g}, the top 1/{self.config.eta:g} cut-off of "
                        f"{len(recorded)} trial(s) at that rung")
        return None


def make_pruner(config: PrunerConfig) -> Pruner:
    """The pruner for ``config.kind`` (``none``: one that never stops a trial)."""
    return {"none": Pruner, "median": MedianPruner, "asha": AshaPruner}[config.kind](config)
