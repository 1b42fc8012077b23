"""The ask/tell interface every search strategy implements, and the factory the tuner calls.

A strategy never does I/O: the tuner asks for one round of normalized points, runs the trials,
and tells the rewards back (reward = 1 - score, lower is better; a failed trial gets 1.0).
Strategies are deterministic for a seed: the same seed and the same told rewards give the same
asks, which is how the tuner resumes (it replays its journal into a fresh strategy).
The factory lives in autoft/search/registry.py (this module imports no strategy).
"""

from __future__ import annotations

import abc
import math
from typing import Optional, Sequence

import numpy as np

from autoft.errors import AutoftError


class Strategy(abc.ABC):
    """Base class: keeps the pending round, the round counter and the best point told so far.

    Subclasses implement ``_propose() -> [popsize, dim]`` and ``_update(points, rewards)``.
    """

    name = "strategy"
    # True where a strategy may be told None / NaN for a trial without a result (failed, pruned):
    # such a trial is ranked below every result and never becomes the best. HAZero and PSHE2 keep
    # PaddleHub's contract (finite rewards only; the tuner scores a failed trial 1.0).
    accepts_missing = False
    # True where the constructor takes ``snap`` (SearchSpace.snap), see make_strategy.
    uses_snap = False

    def __init__(self, x0: Sequence[float], popsize: int, seed: Optional[int] = None):
        x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
        if x0.size == 0 or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be a non-empty finite vector, got {x0!r}")
        if int(popsize) < 1:
            raise AutoftError(f"popsize must be at least 1, got {popsize}")
        if seed is None:
            # Still reproducible afterwards: the drawn seed is kept in .seed for the journal.
            seed = int(np.random.SeedSequence().entropy % (2**32))
        self.x0 = np.clip(x0, -1.0, 1.0)
        self.dim = int(x0.size)
        self.popsize = int(popsize)
        self.seed = int(seed)
        self.round = 0  # rounds told so far
        self._pending: Optional[np.ndarray] = None
        self._best_point: Optional[np.ndarray] = None
        self._best_reward = math.inf

    # ---- the interface -------------------------------------------------------------------------
    def ask(self) -> np.ndarray:
        """Points for the next round, float64 [popsize, dim], normalized coordinates.

        Asking again before telling returns the same points (the round is pending until told).
        Coordinates are in [-1, 1] for HAZero and random; PSHE2's positions may leave the cube
        (PaddleHub did not clip them either): ``SearchSpace.decode`` clips into the bounds.
        """
        if self._pending is None:
            points = np.array(self._propose(), dtype=np.float64)
            if points.shape != (self.popsize, self.dim):
                raise RuntimeError(
                    f"{self.name} proposed shape {points.shape}, expected {(self.popsize, self.dim)}"
                )
            self._pending = points
        return self._pending.copy()

    def tell(self, points: Optional[Sequence[Sequence[float]]], rewards: Sequence[float]) -> None:
        """Report the pending round's rewards (lower is better), in the order ask() returned the points.

        A reward may be None or NaN ("no result") only for strategies with ``accepts_missing``.

        ``points`` must be the asked points (checked to 1e-9, so values read back from a journal
        are fine) or None for "the pending ones"; the strategy always uses its own exact copy.
        """
        if self._pending is None:
            raise RuntimeError(f"{self.name}: tell() without a pending ask()")
        rewards = np.asarray([np.nan if r is None else r for r in rewards], dtype=np.float64).reshape(-1)
        if rewards.shape[0] != self.popsize:
            raise ValueError(
                f"{self.name}: got {rewards.shape[0]} rewards for a round of {self.popsize} points"
            )
        finite = np.isfinite(rewards)
        if not np.all(finite) and not (self.accepts_missing and np.all(finite | np.isnan(rewards))):
            raise ValueError(
                f"{self.name}: rewards must be finite (score a failed trial as reward 1.0), got {rewards}"
            )
        if points is not None:
            points = np.asarray(points, dtype=np.float64)
            if points.shape != self._pending.shape or not np.allclose(
                points, self._pending, rtol=0, atol=1e-9
            ):
                raise ValueError(
                    f"{self.name}: told points differ from the asked ones (round {self.round}); "
                    "a replayed journal must use the same seed, strategy and search space"
                )
        pending = self._pending
        self._update(pending.copy(), rewards.copy())
        i = int(np.argmin(np.where(finite, rewards, np.inf)))  # the earliest trial wins a tie
        if finite[i] and rewards[i] < self._best_reward:
            self._best_reward = float(rewards[i])
            self._best_point = pending[i].copy()
        self._pending = None
        self.round += 1

    def should_stop(self) -> bool:
        """True when the strategy has converged and more rounds would be wasted."""
        return False

    @property
    def best_point(self) -> Optional[np.ndarray]:
        """The told point with the lowest reward (earliest on ties), or None before the first tell."""
        return None if self._best_point is None else self._best_point.copy()

    @property
    def best_reward(self) -> float:
        """The lowest reward told so far (inf before the first tell)."""
        return self._best_reward

    # ---- for subclasses ------------------------------------------------------------------------
    @abc.abstractmethod
    def _propose(self) -> np.ndarray:
        """Return the next round's points [popsize, dim]."""

    @abc.abstractmethod
    def _update(self, points: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from one round (``points`` are exactly the proposed ones)."""
