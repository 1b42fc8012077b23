"""PSHE2: PaddleHub's particle method (population search with hyper-parameter estimation).

Each member i has a position x_i, a personal best b_i and a momentum m_i; g is the global best.

- Initial population (x0 itself is not evaluated): per coordinate u ~ U[-1, 1),
  u >= 0 -> x = x0 + u (1 - x0);  u < 0 -> x = x0 + u (x0 + 1).
- After round k (k from 1): b_i and g are updated with <= comparisons, then
  m_i <- (1 - 3 alpha / k) m_i - alpha (x_i - b_i) - alpha (x_i - g);  x_i <- x_i + alpha m_i;
  then each coordinate gets a fresh perturbation u ~ U[-1, 1):
  u >= 0 -> x += u eps (1 - x);  u < 0 -> x += u eps (x + 1).  No clipping (decode clips).

PaddleHub 1.4 built its momentum and gradient matrices as ``[[0] * n] * popsize``: one row object
repeated, so every member used the LAST member's gradients, the single momentum row was updated
popsize times per round, and all members moved by the same vector. ``legacy_shared_momentum=True``
reproduces that bug (for the benchmark's comparison only); the default is per-member state.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from autoft.search.base import Strategy


def _toward_bounds(x: np.ndarray, u: np.ndarray, scale: float) -> np.ndarray:
    """PaddleHub's move rule: u >= 0 moves toward +1 by u*scale of the gap, u < 0 toward -1."""
    return np.where(u >= 0, x + u * scale * (1.0 - x), x + u * scale * (x + 1.0))


class PSHE2(Strategy):
    """PaddleHub's PSHE2 with per-member momentum (as intended); numpy Generator seeded."""

    name = "pshe2"
    OPTIONS = ("alpha", "epsilon", "legacy_shared_momentum")

    def __init__(
        self,
        x0: Sequence[float],
        popsize: int,
        seed: Optional[int] = None,
        alpha: float = 0.5,
        epsilon: float = 0.2,
        legacy_shared_momentum: bool = False,
    ):
        super().__init__(x0, popsize, seed)
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        self.legacy_shared_momentum = bool(legacy_shared_momentum)
        self._rng = np.random.default_rng(self.seed)
        p, d = self.popsize, self.dim
        u = self._uniform()
        self.positions = _toward_bounds(np.broadcast_to(self.x0, (p, d)), u, 1.0)
        self.momentum = np.zeros((p, d))
        self.member_best = self.positions.copy()  # replaced on the first tell (rewards <= inf)
        self.member_best_reward = np.full(p, np.inf)
        self.global_best = self.x0.copy()
        self.global_best_reward = np.inf

    def _uniform(self) -> np.ndarray:
        # PaddleHub: (random_sample() - 0.5) * 2, i.e. U[-1, 1), drawn member by member.
        return self._rng.uniform(-1.0, 1.0, size=(self.popsize, self.dim))

    def _propose(self) -> np.ndarray:
        return self.positions.copy()

    def _update(self, points: np.ndarray, rewards: np.ndarray) -> None:
        k = self.round + 1  # the round being told, from 1
        x = points
        improved = rewards <= self.member_best_reward
        self.member_best[improved] = x[improved]
        self.member_best_reward[improved] = rewards[improved]
        i = int(np.argmin(rewards))  # first index of the minimum, like list.index(min(...))
        if rewards[i] <= self.global_best_reward:
            self.global_best_reward = float(rewards[i])
            self.global_best = x[i].copy()

        decay = 1.0 - 3.0 * self.alpha / k
        local_grad = x - self.member_best
        pop_grad = x - self.global_best
        if self.legacy_shared_momentum:
            # 1.4's aliasing: one momentum row, updated popsize times with the last member's gradients.
            m = self.momentum[0].copy()
            for _ in range(self.popsize):
                m = decay * m - self.alpha * local_grad[-1] - self.alpha * pop_grad[-1]
            self.momentum[:] = m
        else:
            self.momentum = decay * self.momentum - self.alpha * local_grad - self.alpha * pop_grad
        moved = x + self.alpha * self.momentum
        self.positions = _toward_bounds(moved, self._uniform(), self.epsilon)
