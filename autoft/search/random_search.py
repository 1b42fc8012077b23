"""Random search: every round is popsize points uniform in [-1, 1]^dim (a baseline for the benchmark)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from autoft.search.base import Strategy


class RandomSearch(Strategy):
    """Uniform sampling of the normalized cube; ignores rewards (apart from tracking the best)."""

    name = "random"
    OPTIONS = ()

    def __init__(self, x0: Sequence[float], popsize: int, seed: Optional[int] = None):
        super().__init__(x0, popsize, seed)
        self._rng = np.random.default_rng(self.seed)

    def _propose(self) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, size=(self.popsize, self.dim))

    def _update(self, points: np.ndarray, rewards: np.ndarray) -> None:
        pass  # nothing to learn
