"""TPE through Optuna (the optional extra ``autoft[tpe]``), behind the same batched ask/tell.

Optuna's TPESampler with ``multivariate=True`` and ``constant_liar=True`` (a round of popsize
trials is asked before any is told; the liar keeps them apart), seeded, and the init point
enqueued as the first trial. Each coordinate is a float in [-1, 1]: Optuna searches the same
normalized cube as the other strategies (a choice parameter is its bins, see space.py).
A reward of None/NaN (a trial without a result) is told as a failed Optuna trial, which TPE
leaves out of its model.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import numpy as np

from autoft.errors import AutoftError
from autoft.search.base import Strategy


def import_optuna():
    """Optuna, or an AutoftError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise AutoftError(
            "--tuning_strategy tpe needs Optuna, which is not installed: pip install 'autoft[tpe]' "
            "(or pip install optuna), or choose another --tuning_strategy (auto, pshe2, hazero, random)"
        ) from None
    return optuna


class TPE(Strategy):
    """Optuna's multivariate TPE with the constant liar; deterministic for a seed and the told rewards."""

    name = "tpe"
    OPTIONS = ("n_startup_trials",)
    accepts_missing = True

    def __init__(self, x0: Sequence[float], popsize: int, seed: Optional[int] = None, n_startup_trials: int = 10):
        super().__init__(x0, popsize, seed)
        optuna = import_optuna()
        self._optuna = optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning for multivariate / constant_liar
            sampler = optuna.samplers.TPESampler(
                seed=self.seed, multivariate=True, constant_liar=True, n_startup_trials=int(n_startup_trials)
            )
        self._study = optuna.create_study(sampler=sampler, direction="minimize")
        self._study.enqueue_trial(self._params(self.x0))
        self._trials: list = []

    def _params(self, z: np.ndarray) -> dict:
        return {f"z{i}": float(v) for i, v in enumerate(z)}

    def _propose(self) -> np.ndarray:
        dist = self._optuna.distributions.FloatDistribution(-1.0, 1.0)
        space = {f"z{i}": dist for i in range(self.dim)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._trials = [self._study.ask(space) for _ in range(self.popsize)]
        return np.array([[t.params[f"z{i}"] for i in range(self.dim)] for t in self._trials])

    def _update(self, points: np.ndarray, rewards: np.ndarray) -> None:
        failed = self._optuna.trial.TrialState.FAIL
        for trial, reward in zip(self._trials, rewards):
            if math.isnan(reward):
                self._study.tell(trial, state=failed)
            else:
                self._study.tell(trial, float(reward))
        self._trials = []
