"""auto: autoft's own strategy, a small batched Bayesian optimiser with a trust region.

Round 0: the init point itself, then popsize - 1 points of a Latin hypercube over the cube.
Every later round fits a Gaussian process to everything told so far and picks the round's
points one by one by expected improvement, from candidates in a trust region around the best
point (plus a few uniform points of the cube, so that a far better basin can still win):
- a good init value is exploited at once (the region starts around it when it ranks best); a
  bad one costs one trial, and the region starts around the best point of the hypercube;
- the region's half-width starts at 0.4 (normalized units, the cube is [-1, 1]) and follows
  TuRBO's rule: three improving rounds in a row double it, ``fail_tol`` rounds without an
  improvement halve it (one round at popsize >= 4), and below 0.01 it starts again at 0.4;
  candidates move every coordinate or a random subset of about two;
- rewards enter as normal scores of their ranks, so the model sees only their order: a failed
  trial (reward 1.0, or None / NaN = no result, e.g. pruned) ties for the worst rank and never
  pulls the search toward itself, and huge values (a diverged run) cannot flatten the rest;
- the kernel is Matern 5/2 with one length scale and a noise level, chosen on a small grid by
  marginal likelihood (a weak prior on the length scale; fitted on at most 48 points);
- the region's centre is the told point the model rates best (steadier than the single best
  reward when trials are noisy);
- batch points are kept apart by the "kriging believer": after each pick the model is updated
  as if that point had returned its predicted mean, which lowers the variance (and so the
  expected improvement) around it; exact, and O(n * candidates) per pick.
Choice parameters are coordinates like any other (their bins, see space.py); popsize 1 and
one-dimensional spaces need nothing special. Given ``snap`` (the tuner passes SearchSpace.snap
for a space of ints and choices only: the point a trial really runs), candidates are snapped
before they are scored, and one that would run a trial already told or already picked for the
round is skipped while another is left: on such a grid no trial is spent twice on the same
values until the grid is used up. Without it, as before. All randomness comes from one numpy
Generator seeded with the strategy's seed: the same seed and told rewards give the same points (resume
by replay).
"""

from __future__ import annotations

import statistics
from typing import Callable, Optional, Sequence

import numpy as np

from autoft.search.base import Strategy

N_LOCAL, N_GLOBAL = 256, 8  # candidates per round: in the trust region, uniform in the cube
HALF_INIT, HALF_MIN, HALF_MAX = 0.4, 0.01, 1.0  # trust region half-width (normalized units)
FIT_POINTS = 48  # hyper-parameters are chosen on at most this many told points (the cost is cubic)
LENGTH_SCALES = (0.08, 0.15, 0.3, 0.6, 1.2)  # times sqrt(dim)
NOISES = (1e-4, 1e-2, 0.1)  # noise variance on the unit-variance normal scores


class Auto(Strategy):
    """GP + expected improvement with the kriging believer for batches; see the module docstring."""

    name = "auto"
    OPTIONS = ()
    accepts_missing = True

    uses_snap = True

    def __init__(self, x0: Sequence[float], popsize: int, seed: Optional[int] = None,
                 snap: Optional[Callable[[np.ndarray], np.ndarray]] = None):
        super().__init__(x0, popsize, seed)
        self._snap = snap
        self._rng = np.random.default_rng(self.seed)
        self._x = np.empty((0, self.dim))
        self._y = np.empty(0)  # rewards as told; NaN = no result
        self._half = HALF_INIT  # trust region: half-width of the box around the centre
        self._successes = self._failures = 0
        self._fail_tol = max(1, -(-max(4, self.dim) // self.popsize))  # rounds without improvement

    # ---- proposals -----------------------------------------------------------------------------
    def _propose(self) -> np.ndarray:
        if self.round == 0:
            return self._first_round()
        return self._model_round()

    def _first_round(self) -> np.ndarray:
        # The init point, then a Latin hypercube: whether the init value was good shows in the
        # ranks, and the trust region of the next round starts around whichever point was best.
        points = np.vstack([self.x0[None, :], self._latin_hypercube(self.popsize - 1)])
        return points if self._snap is None else self._distinct(self._snap(points))

    def _distinct(self, points: np.ndarray) -> np.ndarray:
        """Replace a point that snaps onto an earlier one by a uniform point that does not (a few
        tries; on a grid smaller than the round a repeat stays)."""
        for i in range(1, points.shape[0]):
            for _ in range(64):
                if not _same_as(points[i][None, :], points[:i])[0]:
                    break
                points[i] = self._snap(self._rng.uniform(-1.0, 1.0, size=self.dim))
        return points

    def _latin_hypercube(self, n: int) -> np.ndarray:
        if n == 0:
            return np.empty((0, self.dim))
        cells = np.stack([self._rng.permutation(n) for _ in range(self.dim)], axis=1)
        return (cells + self._rng.uniform(size=(n, self.dim))) / n * 2.0 - 1.0

    def _model_round(self) -> np.ndarray:
        scores = _normal_scores(self._y)
        gp = _GP.fit(self._x, scores)
        # The trust region's centre: the told point the model rates best (under noise this is
        # steadier than the single best reward).
        fitted, _, _ = gp.predict(self._x)
        centre = self._x[int(np.argmin(np.where(np.isfinite(self._y), fitted, np.inf)))] \
            if np.any(np.isfinite(self._y)) else self.x0
        cand = self._candidates(centre)
        spent = np.zeros(cand.shape[0], dtype=bool)
        if self._snap is not None:
            # Snapped candidates repeat (a few dozen grid points from hundreds of draws): each is
            # scored once, in order of first appearance (the same picks, a fraction of the work).
            cand = _first_occurrences(self._snap(cand))
            spent = self._already_run(cand)
            if np.count_nonzero(~spent) < self.popsize:
                # The region is used up: look for new trials anywhere in the cube too.
                extra = self._snap(self._rng.uniform(-1.0, 1.0, size=(N_LOCAL, self.dim)))
                cand = _first_occurrences(np.vstack([cand, extra]))
                spent = self._already_run(cand)
        mean, var, cross = gp.predict(cand)
        best = float(np.min(fitted))
        picked: list = []
        rows = np.empty((self.popsize, cand.shape[0]))  # the believer's rank-one downdates
        for m in range(self.popsize):
            ei = _expected_improvement(best, mean, np.sqrt(np.maximum(var, 1e-12)))
            if len(picked) < cand.shape[0]:  # (a grid smaller than the round: repeats are unavoidable)
                ei[picked] = -1.0
            if not spent.all():
                ei[spent] = -1.0
            j = int(np.argmax(ei))
            picked.append(j)
            if self._snap is not None:
                spent |= _same_as(cand, cand[j : j + 1])
            # Kriging believer: condition on cand[j] at its predicted mean (the mean is unchanged).
            cov_j = gp.kernel(cand, cand[j : j + 1])[:, 0] - cross.T @ cross[:, j] - rows[:m].T @ rows[:m, j]
            rows[m] = cov_j / np.sqrt(max(var[j], 1e-12) + gp.noise)
            var = var - rows[m] * rows[m]
        return cand[picked]

    def _already_run(self, cand: np.ndarray) -> np.ndarray:
        """Per candidate: does it snap onto a told point? (All False without ``snap``.)"""
        if self._snap is None or self._x.shape[0] == 0:
            return np.zeros(cand.shape[0], dtype=bool)
        told = self._snap(self._x)
        return _same_as(cand, told)

    def _candidates(self, centre: np.ndarray) -> np.ndarray:
        """Points of the trust region around ``centre`` (all coordinates moved, or a random subset
        of about two) plus a few uniform points of the cube."""
        h = self._half
        moves = self._rng.uniform(-h, h, size=(N_LOCAL, self.dim))
        subset = self._rng.uniform(size=(N_LOCAL, self.dim)) < min(1.0, 2.0 / self.dim)
        subset[np.arange(N_LOCAL), self._rng.integers(self.dim, size=N_LOCAL)] = True
        subset[: N_LOCAL // 2] = True  # half the pool moves every coordinate
        local = centre + subset * moves
        uniform = self._rng.uniform(-1.0, 1.0, size=(N_GLOBAL, self.dim))
        return np.clip(np.vstack([local, uniform]), -1.0, 1.0)

    def _update(self, points: np.ndarray, rewards: np.ndarray) -> None:
        told = rewards[np.isfinite(rewards)]
        before = self.best_reward  # the base class updates it after _update
        if self.round > 0:  # round 0 sets the baseline; the region adapts from round 1 on
            improved = told.size > 0 and told.min() < before - 1e-9 * max(1.0, abs(before))
            self._adapt_region(bool(improved))
        self._x = np.vstack([self._x, np.clip(points, -1.0, 1.0)])
        self._y = np.concatenate([self._y, rewards])

    def _adapt_region(self, improved: bool) -> None:
        """TuRBO's rule: 3 improving rounds in a row double the half-width, ``fail_tol`` failing
        ones halve it; below the minimum it restarts at the initial size (a fresh look around)."""
        if improved:
            self._successes, self._failures = self._successes + 1, 0
        else:
            self._successes, self._failures = 0, self._failures + 1
        if self._successes >= 3:
            self._half, self._successes = min(2.0 * self._half, HALF_MAX), 0
        if self._failures >= self._fail_tol:
            self._half, self._failures = self._half / 2.0, 0
        if self._half < HALF_MIN:
            self._half = HALF_INIT


def _same_as(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per row of ``points``: is it a row of ``others`` (rounded to 9 decimals: the same snapped trial)?"""
    return np.isin(_row_keys(points), _row_keys(others))


def _first_occurrences(points: np.ndarray) -> np.ndarray:
    """The distinct rows of ``points`` (as _same_as tells them apart), in order of first appearance."""
    return points[np.sort(np.unique(_row_keys(points), return_index=True)[1])]


def _row_keys(x: np.ndarray) -> np.ndarray:
    """One comparable scalar per row: its values rounded to 9 decimals (-0.0 made 0.0), as raw bytes."""
    rounded = np.ascontiguousarray(np.round(x, 9) + 0.0, dtype=np.float64)
    return rounded.view(np.dtype((np.void, 8 * x.shape[1]))).ravel()


def _normal_scores(y: np.ndarray) -> np.ndarray:
    """Rewards -> standard normal quantiles of their ranks (ties share a rank; NaN ranks last)."""
    n = y.size
    key = np.where(np.isnan(y), np.inf, y)
    _, group, counts = np.unique(key, return_inverse=True, return_counts=True)
    # Tied values share the mean of their ranks (all failed trials are one tie): the group's
    # first rank (0-based) + (size - 1) / 2.
    ranks = np.cumsum(counts) - counts + (counts - 1) / 2.0
    dist = statistics.NormalDist()
    return np.array([dist.inv_cdf((r + 0.5) / n) for r in ranks])[group.ravel()]


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 for erf (|error| < 1.5e-7): numpy has no erf.
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def _expected_improvement(best: float, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (best - mean) / sd
    return (best - mean) * _norm_cdf(z) + sd * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


class _GP:
    """Zero-mean GP with unit prior variance, Matern 5/2 kernel, hyper-parameters from a grid."""

    def __init__(self, x: np.ndarray, length: float, noise: float, chol_inv: np.ndarray, alpha: np.ndarray):
        self.x, self.length, self.noise = x, length, noise
        self._chol_inv, self._alpha = chol_inv, alpha

    @staticmethod
    def _matern(dist: np.ndarray, length: float) -> np.ndarray:
        r = np.sqrt(5.0) * dist / length
        return (1.0 + r + r * r / 3.0) * np.exp(-r)

    def kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._matern(_distances(a, b), self.length)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> _GP:
        length, noise = cls._choose(*_fit_subset(x, y))
        k = cls._matern(_distances(x, x), length) + (noise + 1e-8) * np.eye(x.shape[0])
        chol_inv = np.linalg.inv(np.linalg.cholesky(k))
        alpha = chol_inv.T @ (chol_inv @ y)
        return cls(x, length, noise, chol_inv, alpha)

    @classmethod
    def _choose(cls, x: np.ndarray, y: np.ndarray):
        """(length scale, noise) of the grid with the highest marginal likelihood (times the prior)."""
        dist = _distances(x, x)
        n, d = x.shape
        best = None
        for base in LENGTH_SCALES:
            length = base * np.sqrt(d)
            k = cls._matern(dist, length)
            for noise in NOISES:
                try:
                    chol = np.linalg.cholesky(k + (noise + 1e-8) * np.eye(n))
                except np.linalg.LinAlgError:
                    continue
                w = np.linalg.solve(chol, y)
                log_ml = -0.5 * float(w @ w) - float(np.sum(np.log(np.diag(chol))))
                log_ml -= 0.5 * np.log(base / 0.3) ** 2  # weak prior: the middle of the grid
                if best is None or log_ml > best[0]:
                    best = (log_ml, length, noise)
        return best[1], best[2]

    def predict(self, c: np.ndarray):
        """Posterior mean and variance at ``c``, and L^-1 k(X, c) for the believer's updates."""
        k = self.kernel(self.x, c)
        cross = self._chol_inv @ k
        return k.T @ self._alpha, 1.0 - np.sum(cross * cross, axis=0), cross


def _fit_subset(x: np.ndarray, y: np.ndarray):
    """At most FIT_POINTS told points: the best half of them, and the rest spread over the others."""
    if x.shape[0] <= FIT_POINTS:
        return x, y
    order = np.argsort(y, kind="stable")
    top, rest = order[: FIT_POINTS // 2], order[FIT_POINTS // 2 :]
    keep = np.concatenate([top, rest[np.linspace(0, rest.size - 1, FIT_POINTS - top.size).astype(int)]])
    return x[keep], y[keep]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))
