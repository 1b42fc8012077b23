"""Search quality: HAZero, PSHE2 (and PaddleHub 1.4's aliased PSHE2), random, Optuna CMA-ES and TPE.

Every strategy gets the same budget (popsize x rounds trials, run as rounds of popsize like a
parallel search) on sphere, Rosenbrock, Rastrigin and a noisy sphere in 3 and 6 dimensions. Each
problem is an hparam.yaml-style search space (float params with greater_than / lower_than and an
init_value away from the optimum) built through autoft.search.SearchSpace; our strategies work in
its normalized cube and trials see decoded values, Optuna's samplers see the same bounds.

Printed and appended to benchmarks/RESULTS.md (with machine, date and versions):
  best     median and IQR (25th-75th percentile) over the seeds of f(best trial), where the best
           trial is the one with the lowest OBSERVED value (noisy for the noisy sphere) and f is
           the noise-free function; all optima are f* = 0.
  hit      share of seeds whose best reaches the target f <= 0.01 * scale, scale = median of f
           over 10,000 uniform points of the box (i.e. "within 1% of the optimum", measured on
           the function's typical range); for the noisy sphere the trial's noise-free f is used.
  trials   median over seeds of the number of trials until the first hit (a miss counts as
           budget + 1, so a median beyond the budget prints as ">budget").

Optuna runs in batch mode (ask popsize trials, then tell them) to match a parallel round;
CmaEsSampler gets x0 = init values and popsize (its first batch is sampled at random: Optuna
learns the search space from a completed trial), TPESampler its defaults. Requires `pip install -r requirements-bench.txt` (optuna, cmaes).

Usage: python benchmarks/search.py [--budgets 8x10 16x10] [--seeds 20] [--dims 3 6] [--no-append]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Before any other import: the script's own dir (benchmarks/) must not be on the path, or
# benchmarks/tokenize.py shadows the stdlib module that inspect (dataclasses, numpy.ma) imports.
ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable, Dict, List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from autoft.search import SearchSpace, make_strategy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# Normalized init point of each problem (the user's init_value), and the shift of the optimum
# for the centred functions, so neither the box centre nor the init point is the answer.
INIT_Z = np.array([-0.5, 0.3, -0.6, 0.4, -0.3, 0.5])
SHIFT = np.array([0.25, -0.4, 0.15, 0.35, -0.2, 0.3])


@dataclass
class Problem:
    name: str
    dim: int
    low: float
    high: float
    f: Callable[[np.ndarray], float]  # noise-free, optimum 0
    noise: float = 0.0  # sd of additive Gaussian noise, as a fraction of `scale`
    scale: float = 1.0
    space: Optional[SearchSpace] = None

    def __post_init__(self):
        init = self.low + (INIT_Z[: self.dim] + 1) / 2 * (self.high - self.low)
        config = {
            "param_list": [
                {
                    "name": f"x{i}",
                    "init_value": float(init[i]),
                    "type": "float",
                    "greater_than": self.low,
                    "lower_than": self.high,
                }
                for i in range(self.dim)
            ]
        }
        self.space = SearchSpace.from_config(config, source=f"<{self.name} {self.dim}d>")
        u = np.random.default_rng(12345).uniform(self.low, self.high, size=(10_000, self.dim))
        self.scale = float(np.median([self.f(x) for x in u]))

    @property
    def label(self) -> str:
        return f"{self.name} {self.dim}d"

    def values(self, params: Dict[str, float]) -> np.ndarray:
        return np.array([params[f"x{i}"] for i in range(self.dim)])


def sphere(shift):
    return lambda x: float(np.sum((x - shift) ** 2))


def rastrigin(shift):
    def f(x):
        y = x - shift
        return float(10 * len(y) + np.sum(y**2 - 10 * np.cos(2 * np.pi * y)))

    return f


def rosenbrock(x):
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def problems(dims: Sequence[int]) -> List[Problem]:
    out = []
    for d in dims:
        shift = 5.12 * SHIFT[:d]
        out += [
            Problem("sphere", d, -5.12, 5.12, sphere(shift)),
            Problem("rosenbrock", d, -2.048, 2.048, rosenbrock),
            Problem("rastrigin", d, -5.12, 5.12, rastrigin(shift)),
            Problem("noisy-sphere", d, -5.12, 5.12, sphere(shift), noise=0.01),
        ]
    return out


# ---- running one search ---------------------------------------------------------------------
def run_ours(name: str, problem: Problem, popsize: int, rounds: int, seed: int, observe) -> None:
    options = {}
    if name == "pshe2-1.4":
        name, options = "pshe2", {"legacy_shared_momentum": True}
    strategy = make_strategy(name, problem.space.init_point(), popsize, seed, **options)
    for _ in range(rounds):
        points = strategy.ask()
        rewards = [observe(problem.values(problem.space.decode(z))) for z in points]
        strategy.tell(points, rewards)
        if strategy.should_stop():
            break


def run_optuna(name: str, problem: Problem, popsize: int, rounds: int, seed: int, observe) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    init = problem.space.init_values()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning for some sampler options
        if name == "optuna-cmaes":
            # sigma0 left at Optuna's default (1/6 of each range; HAZero's 0.2 is 1/10): what a
            # user would pick, and Optuna deprecates the argument.
            sampler = optuna.samplers.CmaEsSampler(
                x0=init, popsize=popsize, n_startup_trials=0, seed=seed, warn_independent_sampling=False
            )
        else:
            sampler = optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(sampler=sampler, direction="minimize")
        for _ in range(rounds):
            trials = [study.ask() for _ in range(popsize)]
            xs = [
                np.array([t.suggest_float(f"x{i}", problem.low, problem.high) for i in range(problem.dim)])
                for t in trials
            ]
            for t, x in zip(trials, xs):
                study.tell(t, observe(x))


STRATEGIES = ["hazero", "pshe2", "pshe2-1.4", "random", "optuna-cmaes", "optuna-tpe"]


def one_run(strategy: str, problem: Problem, popsize: int, rounds: int, seed: int):
    """Returns (true f of the best observed trial, trials until the first hit or None, seconds in the strategy)."""
    noise_rng = np.random.default_rng([seed, problem.dim, len(problem.name)])
    target = 0.01 * problem.scale
    state = {"n": 0, "best_obs": np.inf, "best_true": np.inf, "hit": None, "f_time": 0.0}

    def observe(x: np.ndarray) -> float:
        t = time.perf_counter()
        true = problem.f(x)
        obs = true + (problem.noise * problem.scale * noise_rng.standard_normal() if problem.noise else 0.0)
        state["n"] += 1
        if obs < state["best_obs"]:
            state["best_obs"], state["best_true"] = obs, true
        if state["hit"] is None and true <= target:
            state["hit"] = state["n"]
        state["f_time"] += time.perf_counter() - t
        return obs

    start = time.perf_counter()
    runner = run_optuna if strategy.startswith("optuna") else run_ours
    runner(strategy, problem, popsize, rounds, seed, observe)
    spent = time.perf_counter() - start - state["f_time"]
    return state["best_true"], state["hit"], spent, state["n"]


# ---- report ----------------------------------------------------------------------------------
def fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def versions() -> str:
    import cma

    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"cma {cma.__version__}"]
    try:
        import cmaes
        import optuna

        parts += [f"optuna {optuna.__version__}", f"cmaes {cmaes.__version__}"]
    except ImportError:
        parts.append("optuna not installed")
    return ", ".join(parts)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores, {platform.system()}"


def parse_budget(text: str):
    popsize, _, rounds = text.lower().partition("x")
    return int(popsize), int(rounds)


def run_regime(popsize: int, rounds: int, seeds: int, dims, strategies) -> str:
    """Run every (problem, strategy) cell for one budget; print progress, return the markdown tables."""
    budget = popsize * rounds
    rows, overhead = [], {s: [0.0, 0] for s in strategies}
    medians: Dict[str, Dict[str, float]] = {}
    for problem in problems(dims):
        for strategy in strategies:
            bests, hits = [], []
            for seed in range(seeds):
                best, hit, spent, n = one_run(strategy, problem, popsize, rounds, seed)
                bests.append(best)
                hits.append(hit if hit is not None else budget + 1)
                overhead[strategy][0] += spent
                overhead[strategy][1] += n
            q25, med, q75 = np.percentile(bests, [25, 50, 75])
            hit_share = np.mean([h <= budget for h in hits])
            med_trials = np.median(hits)
            trials = f">{budget}" if med_trials > budget else f"{med_trials:g}"
            medians.setdefault(problem.label, {})[strategy] = med
            rows.append(
                [problem.label, strategy, fmt(med), f"{fmt(q25)} - {fmt(q75)}", f"{hit_share:.0%}", trials]
            )
            print(
                f"{popsize}x{rounds} {problem.label:16} {strategy:13} median {fmt(med):>8}  "
                f"IQR {fmt(q25)} - {fmt(q75)}  hit {hit_share:4.0%}  trials {trials}",
                flush=True,
            )

    header = ["problem", "strategy", "best (median)", "best IQR", "hit 1%", "trials to 1% (median)"]
    lines = [f"### Budget {popsize} x {rounds} = {budget} trials", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    ranks: Dict[str, List[int]] = {s: [] for s in strategies}
    for per in medians.values():
        for r, s in enumerate(sorted(strategies, key=lambda s: per[s]), 1):
            ranks[s].append(r)
    lines += [
        "",
        "| strategy | mean rank of median best (1 = best) | strategy time per trial (ms) |",
        "|---|---|---|",
    ]
    for s in sorted(strategies, key=lambda s: np.mean(ranks[s])):
        ms = 1000 * overhead[s][0] / max(1, overhead[s][1])
        lines.append(f"| {s} | {np.mean(ranks[s]):.2f} | {ms:.2f} |")
    if "pshe2" in strategies and "pshe2-1.4" in strategies:
        wins = sum(per["pshe2"] < per["pshe2-1.4"] for per in medians.values())
        lines.append(
            f"\nPSHE2 (per-member momentum) has a lower median best than 1.4's aliased PSHE2 on "
            f"{wins} of {len(medians)} problems."
        )
    return "\n".join(lines)


# ---- the broad suite (issue 15): many instances, informative and uninformative init values ------
# Every function is defined on the normalized cube z in [-1, 1]^d (what the strategies search) via
# x = 5 z (the BBOB domain [-5, 5]^d); each instance draws its own optimum x_opt in [-4, 4]^d and
# rotation, so the optimum is neither the centre nor a corner. All optima are f = 0.
FAMILIES = {
    "separable": ("sphere", "ellipsoid", "rastrigin"),
    "ill-conditioned": ("rot-ellipsoid", "rosenbrock", "bent-cigar"),
    "multimodal": ("rot-rastrigin", "ackley", "schaffer"),
    "weakly structured": ("gallagher", "step-ellipsoid", "cliff"),
    "noisy": ("noisy-sphere", "noisy-rosenbrock", "noisy-cliff"),
}


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _ellipsoid_weights(d: int, cond: float = 1e6) -> np.ndarray:
    return cond ** (np.arange(d) / max(1, d - 1))


def _rastrigin(z: np.ndarray) -> float:
    return float(10 * z.size + np.sum(z * z - 10 * np.cos(2 * np.pi * z)))


def _rosenbrock(z: np.ndarray) -> float:
    return float(np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2)) if z.size > 1 else float((1 - z[0]) ** 2)


def make_function(kind: str, d: int, rng: np.random.Generator):
    """(f on x in [-5, 5]^d, x_opt, noise) for one instance; noise(rng, f) -> observed value."""
    x_opt = rng.uniform(-4, 4, size=d)
    rot = _rotation(rng, d)
    w = _ellipsoid_weights(d)
    base = kind.replace("noisy-", "")

    if base == "sphere":
        def f(x): return float(np.sum((x - x_opt) ** 2))
    elif base == "ellipsoid":
        def f(x): return float(np.sum(w * (x - x_opt) ** 2))
    elif base == "rastrigin":
        def f(x): return _rastrigin(x - x_opt)
    elif base == "rot-ellipsoid":
        def f(x): return float(np.sum(w * (rot @ (x - x_opt)) ** 2))
    elif base == "rosenbrock":
        scale = max(1.0, np.sqrt(d) / 8.0)
        def f(x): return _rosenbrock(scale * (rot @ (x - x_opt)) + 1.0)
    elif base == "bent-cigar":
        def f(x):
            z = rot @ (x - x_opt)
            return float(z[0] ** 2 + 1e6 * np.sum(z[1:] ** 2))
    elif base == "rot-rastrigin":
        def f(x): return _rastrigin(rot @ (x - x_opt))
    elif base == "ackley":
        def f(x):
            z = rot @ (x - x_opt)
            return float(-20 * np.exp(-0.2 * np.sqrt(np.mean(z * z))) - np.exp(np.mean(np.cos(2 * np.pi * z))) + 20 + np.e)
    elif base == "schaffer":
        cond = np.sqrt(10.0) ** (np.arange(d) / max(1, d - 1))
        def f(x):
            z = cond * (rot @ (x - x_opt))
            s = np.sqrt(z[:-1] ** 2 + z[1:] ** 2) if d > 1 else np.abs(z)
            return float(np.mean(np.sqrt(s) + np.sqrt(s) * np.sin(50 * s ** 0.2) ** 2) ** 2)
    elif base == "gallagher":
        # 21 Gaussian peaks (BBOB f22's idea): the global one at x_opt (height 10), 20 lower ones.
        peaks = np.vstack([x_opt, rng.uniform(-4.9, 4.9, size=(20, d))])
        heights = np.concatenate([[10.0], 1.1 + 8.0 * np.arange(20) / 19])
        prec = [np.diag(1000 ** rng.permutation(np.arange(d) / max(1, d - 1)) / 1000 ** 0.5)
                for _ in range(21)]
        def f(x):
            g = [h * np.exp(-0.5 / d * (rot @ (x - p)) @ c @ (rot @ (x - p))) for p, h, c in zip(peaks, heights, prec)]
            return float((10.0 - max(g)) ** 2)
    elif base == "step-ellipsoid":
        # Plateaus: the rotated coordinates are rounded (to 0.5), as in BBOB f7; the optimum is a flat cell.
        def f(x):
            z = rot @ (x - x_opt)
            return float(np.sum(np.sqrt(w) * np.round(2 * z) ** 2) / 4)
    elif base == "cliff":
        # A learning-rate cliff: beyond a hyperplane near the optimum every trial "diverges" to a
        # flat, bad value (like a fine-tuning run stuck at chance); elsewhere a rotated ellipsoid.
        normal = rot[0]
        edge = float(normal @ x_opt) + 0.5
        cw = _ellipsoid_weights(d, 100.0)
        def f(x):
            if normal @ x > edge:
                return 1000.0
            return float(min(1000.0, np.sum(cw * (rot @ (x - x_opt)) ** 2)))
    else:
        raise ValueError(kind)

    if not kind.startswith("noisy-"):
        return f, x_opt, None
    if base == "rosenbrock":
        def noise(r, v): return v * float(np.exp(0.5 * r.standard_normal()))  # multiplicative, heavy
    else:
        sd = {"sphere": 1.0, "cliff": 5.0}[base]
        def noise(r, v): return v + sd * float(r.standard_normal())  # additive
    return f, x_opt, noise


@dataclass
class Instance:
    label: str
    family: str
    dim: int
    f: Callable[[np.ndarray], float]
    z_opt: np.ndarray
    noise: Optional[Callable] = None


def broad_instances(dims: Sequence[int], per_cell: int) -> List[Instance]:
    out = []
    for family, kinds in FAMILIES.items():
        for kind in kinds:
            for d in dims:
                for i in range(per_cell):
                    rng = np.random.default_rng([d, i, sum(map(ord, kind))])
                    f, x_opt, noise = make_function(kind, d, rng)
                    out.append(Instance(f"{kind} {d}d #{i}", family, d, f, x_opt / 5.0, noise))
    return out


def init_point(inst: Instance, informative: bool, seed: int) -> np.ndarray:
    """(a) informative: the optimum plus N(0, 0.1^2) per coordinate (5% of the range); (b) uniform."""
    rng = np.random.default_rng([seed, inst.dim, zlib.crc32(inst.label.encode()), int(informative)])
    if informative:
        return np.clip(inst.z_opt + 0.1 * rng.standard_normal(inst.dim), -1.0, 1.0)
    return rng.uniform(-1.0, 1.0, size=inst.dim)


def run_broad_one(strategy: str, inst: Instance, z0: np.ndarray, popsize: int, rounds: int, seed: int):
    """One search; returns (noise-free f of the trial with the best observed value, seconds per round
    spent in the strategy). Trials see x = 5 z with z clipped to the cube (as decode clips)."""
    noise_rng = np.random.default_rng([seed, 7, inst.dim])
    if strategy == "hazero" and (inst.dim < 2 or popsize < 2):
        return np.nan, 0.0
    s = make_strategy(strategy, z0, popsize, seed)
    best_obs, best_true, spent, n_rounds = np.inf, np.inf, 0.0, 0
    for _ in range(rounds):
        t = time.process_time()  # CPU time: the machine may be shared, wall time would count others
        points = s.ask()
        spent += time.process_time() - t
        rewards = []
        for z in points:
            true = inst.f(5.0 * np.clip(z, -1.0, 1.0))
            obs = inst.noise(noise_rng, true) if inst.noise else true
            if obs < best_obs:
                best_obs, best_true = obs, true
            rewards.append(obs)
        t = time.process_time()
        s.tell(points, rewards)
        spent += time.process_time() - t
        n_rounds += 1
        if s.should_stop():
            break
    return best_true, spent / n_rounds


BROAD_STRATEGIES = ["auto", "tpe", "pshe2", "hazero", "random"]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (1 = lowest) with ties averaged; NaN (strategy could not run) ranks last."""
    key = np.where(np.isnan(values), np.inf, values)
    order = np.argsort(key, kind="stable")
    ranks = np.empty(len(key))
    ranks[order] = np.arange(1, len(key) + 1, dtype=float)
    for v in np.unique(key):
        ranks[key == v] = ranks[key == v].mean()
    return ranks


def wilcoxon_signed_rank(diff: np.ndarray):
    """Two-sided Wilcoxon signed-rank test, normal approximation with tie correction (zeros dropped,
    Wilcoxon's convention). Returns (W+, z, p)."""
    diff = diff[np.abs(diff) > 1e-12]
    n = diff.size
    if n == 0:
        return 0.0, 0.0, 1.0
    r = _ranks(np.abs(diff))
    w_plus = float(np.sum(r[diff > 0]))
    mean = n * (n + 1) / 4
    _, counts = np.unique(r, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - np.sum(counts**3 - counts) / 48
    z = (w_plus - mean) / np.sqrt(var)
    p = math.erfc(abs(z) / math.sqrt(2))
    return w_plus, float(z), float(p)


def run_broad_cell(popsize: int, rounds: int, informative: bool, instances, seeds, strategies):
    """All instances x seeds for one cell; returns (results [runs, strategies], ms per round, labels)."""
    results, ms, families = [], {s: [] for s in strategies}, []
    for inst in instances:
        for seed in seeds:
            z0 = init_point(inst, informative, seed)
            row = []
            for s in strategies:
                best, per_round = run_broad_one(s, inst, z0, popsize, rounds, seed)
                row.append(best)
                if popsize == 16 and not np.isnan(best):
                    ms[s].append(1000 * per_round)
            results.append(row)
            families.append(inst.family)
    return np.array(results), ms, families


def broad_report(cells, strategies) -> str:
    lines = []
    for (popsize, rounds, informative), (res, _ms, families) in cells.items():
        ranks = np.array([_ranks(row) for row in res])
        init = "informative init (optimum + N(0, 0.1²))" if informative else "uninformative init (uniform)"
        lines += [f"### {popsize} x {rounds} = {popsize * rounds} trials, {init}: {len(res)} runs", ""]
        fam_names = list(FAMILIES)
        header = ["strategy", "mean rank (all)"] + [f"{f}" for f in fam_names] + ["median best f"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        fam = np.array(families)
        for j in np.argsort(ranks.mean(axis=0), kind="stable"):
            per_fam = [f"{ranks[fam == f, j].mean():.2f}" for f in fam_names]
            lines.append(f"| {strategies[j]} | **{ranks[:, j].mean():.2f}** | " + " | ".join(per_fam)
                         + f" | {fmt(float(np.nanmedian(res[:, j])))} |")
        if "auto" in strategies and "tpe" in strategies:
            a, t = strategies.index("auto"), strategies.index("tpe")
            diff = np.log10(res[:, a] + 1e-12) - np.log10(res[:, t] + 1e-12)
            w, z, p = wilcoxon_signed_rank(diff)
            wins = int(np.sum(res[:, a] < res[:, t]))
            ties = int(np.sum(res[:, a] == res[:, t]))
            lines.append(
                f"\nauto vs tpe, paired over the {len(res)} runs: auto lower on {wins}, tie {ties}, "
                f"tpe lower on {len(res) - wins - ties}; two-sided Wilcoxon signed-rank test on "
                f"log10(best f) differences: z = {z:.2f}, p = {p:.2g} (z < 0: auto better)."
            )
        lines.append("")
    if any(p == 16 for p, _, _ in cells):
        lines += ["| strategy | CPU ms per round at popsize 16 (ask + tell, mean over the 16 x 10 runs, d = 2 … 6) |", "|---|---|"]
        per = {s: [] for s in strategies}
        for _, ms, _ in cells.values():
            for s in strategies:
                per[s] += ms[s]
        for s in strategies:
            lines.append(f"| {s} | {np.mean(per[s]):.2f} |" if per[s] else f"| {s} | – |")
    return "\n".join(lines)


def main_broad(args) -> str:
    strategies = list(args.strategies)
    instances = broad_instances(args.dims, args.instances)
    if args.families:
        instances = [i for i in instances if i.family in args.families]
    seeds = list(range(args.seeds))
    cells = {}
    for budget in args.budgets:
        popsize, rounds = parse_budget(budget)
        for informative in (True, False):
            t = time.perf_counter()
            cells[(popsize, rounds, informative)] = run_broad_cell(popsize, rounds, informative, instances, seeds, strategies)
            res = cells[(popsize, rounds, informative)][0]
            ranks = np.array([_ranks(row) for row in res]).mean(axis=0)
            print(f"{budget} informative={informative}: " + "  ".join(f"{s} {r:.2f}" for s, r in zip(strategies, ranks))
                  + f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    return broad_report(cells, strategies)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", choices=["broad", "classic"], default="broad",
                    help="broad: issue 15's suite (default); classic: the first 8 problems with per-problem tables")
    ap.add_argument("--budgets", nargs="+", default=None, help="popsize x rounds, e.g. 16x10 (broad: 16x10 6x4)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per problem (broad: 1, classic: 20)")
    ap.add_argument("--dims", type=int, nargs="+", default=None, help="broad: 2 3 4 5 6, classic: 3 6")
    ap.add_argument("--instances", type=int, default=4, help="broad: instances per function and dimension")
    ap.add_argument("--families", nargs="+", choices=list(FAMILIES), help="broad: only these families")
    ap.add_argument("--strategies", nargs="+", default=None, choices=sorted(set(STRATEGIES + BROAD_STRATEGIES)))
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)
    broad = args.suite == "broad"
    args.budgets = args.budgets or (["16x10", "6x4"] if broad else ["8x10", "16x10"])
    args.seeds = args.seeds or (1 if broad else 20)
    args.dims = args.dims or ([2, 3, 4, 5, 6] if broad else [3, 6])
    args.strategies = args.strategies or (BROAD_STRATEGIES if broad else STRATEGIES)
    strategies = list(args.strategies)
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("optuna not installed (pip install -r requirements-bench.txt): skipping its samplers")
        strategies = [s for s in strategies if not s.startswith("optuna") and s != "tpe"]
    args.strategies = strategies

    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    if broad:
        text = main_broad(args)
    else:
        text = "\n\n".join(run_regime(*parse_budget(b), args.seeds, args.dims, strategies) for b in args.budgets)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load = f"load average {load_before[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print()
    print(text)
    print(f"\n{wall:.0f} s wall, {cpu:.0f} s CPU, {load}")

    if not args.no_append:
        now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        command = " ".join(
            ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
        )
        if broad:
            n = len(broad_instances(args.dims, args.instances))
            about = (
                f"Broad suite: {n} problem instances (15 functions in 5 families x d = {args.dims} x "
                f"{args.instances} instances, each with its own optimum and rotation), seeds {list(range(args.seeds))}. "
                "best f = noise-free f (optimum 0) at the trial with the lowest observed value; ranks among the "
                "strategies per run (1 = best, ties averaged; hazero cannot run d = 1 or popsize 1 and ranks last "
                "there). tpe = Optuna TPESampler(multivariate, constant_liar, seeded) with the init value "
                "enqueued as its first trial, asked and told in rounds of popsize like every strategy.\n\n"
            )
        else:
            about = (
                f"{args.seeds} seeds per cell. best = noise-free f (optimum 0) at the trial with the lowest observed "
                "value; hit 1% = share of seeds reaching f <= 0.01 x (median f over uniform points of the box); "
                "trials = median trial count to the first such point (misses count as budget + 1). Optuna runs in "
                "batches of popsize; CmaEsSampler starts at the init values (its first batch is random, Optuna's "
                "behaviour).\n\n"
            )
        block = (
            f"\n## search quality, {args.suite} suite ({now})\n\n"
            f"Machine: {machine()}. Versions: {versions()}. "
            f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}.\n"
            f"Command: `{command}` ({wall:.0f} s wall, {cpu:.0f} s CPU, {load}).\n"
            f"{about}{text}\n"
        )
        # One write in append mode: other benchmarks append to the same file.
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(block)
        print(f"\nappended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
