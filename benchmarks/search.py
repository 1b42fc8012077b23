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

import argparse
import datetime
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budgets", nargs="+", default=["8x10", "16x10"], help="popsize x rounds, e.g. 8x10")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--dims", type=int, nargs="+", default=[3, 6])
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)
    strategies = list(args.strategies)
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("optuna not installed (pip install -r requirements-bench.txt): skipping its samplers")
        strategies = [s for s in strategies if not s.startswith("optuna")]

    wall = time.perf_counter()
    tables = [run_regime(*parse_budget(b), args.seeds, args.dims, strategies) for b in args.budgets]
    wall = time.perf_counter() - wall
    text = "\n\n".join(tables)
    print()
    print(text)

    if not args.no_append:
        now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        command = " ".join(
            ["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])]
        )
        block = (
            f"\n## search quality ({now})\n\n"
            f"Machine: {machine()}. Versions: {versions()}.\n"
            f"Command: `{command}` ({wall:.0f} s wall). {args.seeds} seeds per cell.\n"
            "best = noise-free f (optimum 0) at the trial with the lowest observed value; "
            "hit 1% = share of seeds reaching f <= 0.01 x (median f over uniform points of the box); "
            "trials = median trial count to the first such point (misses count as budget + 1). "
            "Optuna runs in batches of popsize; CmaEsSampler starts at the init values "
            "(its first batch is random, Optuna's behaviour).\n\n"
            f"{text}\n"
        )
        # One write in append mode: other benchmarks append to the same file.
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write(block)
        print(f"\nappended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
