"""HAZero: PaddleHub's name for plain CMA-ES (the `cma` package), with PaddleHub 1.4's settings.

CMAEvolutionStrategy(x0 = encoded init values, sigma0 = 0.2, popsize, bounds [-1, 1],
AdaptSigma True), cma's defaults otherwise (BoundTransform, CSA step-size, active CMA,
mu = popsize // 2, mirrored sampling when popsize < 6). It is an evolution strategy, not
Bayesian optimisation. Stops when cma's own termination criteria fire (e.g. tolfun or a flat
round where every trial got the same reward, as when all crashed).
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from autoft.errors import AutoftError
from autoft.search.base import Strategy


class HAZero(Strategy):
    """CMA-ES through ``cma``; the seed drives a private numpy Generator that cma samples from."""

    name = "hazero"
    OPTIONS = ("sigma0",)

    def __init__(self, x0: Sequence[float], popsize: int, seed: Optional[int] = None, sigma0: float = 0.2):
        super().__init__(x0, popsize, seed)
        if self.dim < 2:
            raise AutoftError(
                f"HAZero (CMA-ES) needs at least 2 hyper-parameters, the search space has {self.dim}: "
                "cma cannot run a 1-dimensional search. Add a parameter or use --tuning_strategy=pshe2"
            )
        if self.popsize < 2:
            raise AutoftError(
                f"HAZero (CMA-ES) needs --popsize of at least 2, got {self.popsize}: cma cannot update "
                "its distribution from a single trial per round. Raise --popsize or use --tuning_strategy=pshe2"
            )
        self.sigma0 = float(sigma0)
        self._rng = np.random.default_rng(self.seed)
        opts = {
            "popsize": self.popsize,
            "bounds": [-1, 1],
            "AdaptSigma": True,
            # cma's 'seed' option would reseed numpy's process-global RNG, which anything else in
            # the process may advance between rounds; a private generator keeps replay exact.
            "randn": self._randn,
            "seed": np.nan,
            "verbose": -9,
            "verb_disp": 0,
            "verb_log": 0,
        }
        import cma  # imported here: the tuner imports this module on every start

        with _cma_quiet():
            self._es = cma.CMAEvolutionStrategy(list(self.x0), self.sigma0, opts)

    def _randn(self, lam: int, n: int) -> np.ndarray:
        return self._rng.standard_normal((lam, n))

    def _propose(self) -> np.ndarray:
        with _cma_quiet():
            self._asked = self._es.ask()
        return np.array(self._asked, dtype=np.float64)

    def _update(self, points: np.ndarray, rewards: np.ndarray) -> None:
        with _cma_quiet():
            # The very arrays ask() returned: cma recognises its own solutions (mirrors, bounds).
            self._es.tell(self._asked, [float(r) for r in rewards])
        self._asked = None

    def should_stop(self) -> bool:
        """True when cma's termination criteria fire (see :attr:`stop_reasons`)."""
        return bool(self.stop_reasons)

    @property
    def stop_reasons(self) -> Dict[str, float]:
        """cma's termination criteria that fired, e.g. {'tolflatfitness': 1}; empty while running."""
        if self.round == 0:
            return {}
        with _cma_quiet():
            return dict(self._es.stop())

    @property
    def sigma(self) -> float:
        """cma's current overall step size (in normalized units)."""
        return float(self._es.sigma)


class _cma_quiet:
    """Silence cma's warnings and keep numpy's global RNG untouched by cma's internals.

    cma draws a few numbers from ``np.random`` even with a custom ``randn`` (its stochastic
    rounding of the mirror count); saving and restoring the global state keeps other code in
    the process and this strategy independent of each other.
    """

    def __enter__(self):
        self._state = np.random.get_state()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self._warnings.__exit__(*exc)
        np.random.set_state(self._state)
        return False
