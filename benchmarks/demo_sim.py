"""The demo search simulated in-process: hundreds of strategy seeds in a minute.

A replayed search (benchmarks/demo_replay.py) runs the real tuner and costs minutes, so the demo
benchmarks stop at a handful of seeds, and with 12 trials on a 48-point grid a handful of seeds is
mostly luck (whether one of them draws the grid's best point in round 0). This runs the same search
without processes: the tuner's strategy (``make_strategy`` with ``SearchSpace.snap`` for a grid, as
the tuner passes it), the tuner's pruning watcher (``autoft.tuner.pruning.PruningMonitor`` with the
``--pruner`` flags parsed by the tuner's own parser), the tuner's told rewards (1 - the score the
pruning rules give the strategy) and the recorded trials (benchmarks/demo_landscape.json). Time is
an event simulation of the CPU slots: a round's trials start in order as slots free up, each report
arrives at its recorded second, a pruned trial frees its slot at once, rounds are synchronous.

What it leaves out: the tuner's one-second polling (reports less than a second apart may reach the
pruner in another order) and process start-up. ``--check N`` runs the real replayed tuner for the
first N seeds of every configuration and reports where the two differ; a test does the same for one
search.

    python benchmarks/demo_sim.py                             # 200 seeds, 5 strategies x none / asha
    python benchmarks/demo_sim.py --seeds 20 --check 4 --no-append
"""

from __future__ import annotations

import argparse
import heapq
import math
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402 - after the path fix (benchmarks/tokenize.py shadows the stdlib's)

from benchmarks import demo_replay as replay  # noqa: E402
from benchmarks.demo_landscape import LANDSCAPE, key, load  # noqa: E402
from benchmarks.results import load_average, runnable  # noqa: E402

STRATEGIES = ["auto", "hazero", "pshe2", "random", "tpe"]


def pruner_config(extra: Sequence[str]):
    """The PrunerConfig the tuner builds from these flags (its own parser)."""
    from autoft.tuner.cli import build_parser, pruning_config

    return pruning_config(build_parser().parse_args(["--param_file=hparam.yaml", *extra]))


def run_round(points: Sequence[Dict[str, Any]], first: int, round_: int, slots: int, monitor) -> List[Dict[str, Any]]:
    """Play one round's trials on ``slots`` slots; per trial its status, intermediate curve and end time."""
    out: List[Dict[str, Any]] = [{} for _ in points]
    events: list = []  # (time, trial index, curve index); curve index len(curve) = the trial's process exits
    waiting = list(range(len(points)))
    running: Dict[int, SimpleNamespace] = {}

    def start(i: int, now: float) -> None:
        p = points[i]
        for j, (_, _, sec) in enumerate(p["curve"]):
            heapq.heappush(events, (now + sec, i, j))
        heapq.heappush(events, (now + p["seconds"], i, len(p["curve"])))
        running[i] = SimpleNamespace(number=first + i, round=round_, intermediate=[], spec=None)

    for _ in range(min(slots, len(waiting))):
        start(waiting.pop(0), 0.0)
    stopped: Dict[int, str] = {}

    def stop_trial(number: int, status: str, reason: str) -> bool:
        stopped[number - first] = reason
        return True

    end = 0.0
    while events:
        now, i, j = heapq.heappop(events)
        if i not in running:
            continue  # ended already (pruned)
        trial, p = running[i], points[i]
        if j < len(p["curve"]):
            trial.intermediate.append((int(p["curve"][j][0]), float(p["curve"][j][1])))
            if monitor is not None:
                monitor.on_tick([trial], stop_trial)
            if i not in stopped:
                continue
        status = "PRUNED" if i in stopped else p["status"]
        rec = SimpleNamespace(trial=first + i, attempts=1, round=round_, status=status, intermediate=trial.intermediate,
                              last_step=None, last_score=None)
        if monitor is not None:
            monitor.trial_finished(rec)  # a PRUNED trial: its journaled curve and last score
        out[i] = {"status": status, "intermediate": [list(c) for c in rec.intermediate], "reason": stopped.get(i, ""),
                  "last_score": rec.last_score}
        del running[i]
        end = max(end, now)
        if waiting:
            start(waiting.pop(0), now)
    return [dict(o, end=end) for o in out]


def simulate(strategy: str, seed: int, extra: Sequence[str] = (), popsize: int = replay.DEMO_POPSIZE,
             rounds: int = replay.DEMO_ROUNDS, slots: int = 2, landscape: Optional[Dict[str, Any]] = None,
             param_file: Path = ROOT / replay.PARAM_FILE) -> Dict[str, Any]:
    """One simulated search, summarised as a replayed one is (demo_replay.summary)."""
    from autoft.search import SearchSpace, make_strategy
    from autoft.tuner.pruning import PruningMonitor, strategy_score

    points = (landscape or load(LANDSCAPE))["points"]
    space = SearchSpace.load(param_file)
    config = pruner_config(extra)
    monitor = PruningMonitor(config, per_round=False) if config.kind != "none" else None
    st = make_strategy(strategy, space.init_point(), popsize, seed, snap=space.snap if space.is_grid else None)
    trials: List[Dict[str, Any]] = []
    wall = 0.0
    for r in range(rounds):
        z = st.ask()
        hps = [space.decode(x) for x in z]
        ran = run_round([points[key(hp)] for hp in hps], len(trials), r, slots, monitor)
        rewards = []
        for hp, t in zip(hps, ran):
            p = points[key(hp)]
            score = strategy_score(t["status"], p["final"], t.get("last_score"))
            rewards.append(1.0 - score if score is not None else 1.0)
            trials.append(dict(t, hparams=hp, score=p["final"] if t["status"] == "OK" else None, trial=len(trials)))
        wall += ran[0]["end"] if ran else 0.0
        st.tell(z, rewards)
    return replay.summary(strategy, seed, trials, points, wall)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of the Mann-Whitney U test (normal approximation with the tie correction)."""
    x = np.concatenate([a, b])
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(1, x.size + 1)
    for v in np.unique(x):
        same = x == v
        ranks[same] = ranks[same].mean()
    n1, n2 = len(a), len(b)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    ties = sum(c ** 3 - c for c in np.unique(x, return_counts=True)[1])
    var = n1 * n2 / 12 * ((n1 + n2 + 1) - ties / ((n1 + n2) * (n1 + n2 - 1)))
    if var <= 0:
        return 1.0
    z = (u - n1 * n2 / 2) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2))


def table(runs: List[Dict[str, Any]], strategies: Sequence[str], pruners: Sequence[str], grid_best: float) -> str:
    header = ["pruner", "strategy", "seeds", "best dev (median)", "best dev (mean)", "found the grid best",
              "its test (median)", "PRUNED / trials", "trial-steps (median)", "x none", "auto vs this: p"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for pr in pruners:
        for s in strategies:
            rs = [r for r in runs if r["pruner"] == pr and r["strategy"] == s]
            base = [r for r in runs if r["pruner"] == "none" and r["strategy"] == s]
            autos = [r["best"] for r in runs if r["pruner"] == pr and r["strategy"] == "auto"]
            if not rs:
                continue
            bests = [r["best"] for r in rs]
            steps = statistics.median(r["steps"] for r in rs)
            lines.append("| " + " | ".join([
                pr, s, str(len(rs)), f"{statistics.median(bests):.2%}", f"{statistics.mean(bests):.2%}",
                f"{sum(b >= grid_best for b in bests) / len(rs):.0%}", f"{statistics.median(r['test'] for r in rs):.2%}",
                f"{sum(r['pruned'] for r in rs)} / {sum(r['trials'] for r in rs)}", f"{steps:g}",
                f"{steps / statistics.median(r['steps'] for r in base):.2f}" if base else "-",
                "-" if s == "auto" or not autos else f"{mann_whitney(autos, bests):.1g}"]) + " |")
    return "\n".join(lines)


def check(runs: List[Dict[str, Any]], n: int, args, flags: Dict[str, List[str]]) -> str:
    """Run the real replayed tuner for the first ``n`` seeds of each configuration; where do they differ?"""
    work, tmp = replay.scratch(None, "demo_sim_check_")
    picks = [r for r in runs if r["seed"] < args.first_seed + n]
    searches = [dict(out=work / f"{r['pruner']}-{r['strategy']}-{r['seed']}", strategy=r["strategy"], seed=r["seed"],
                     extra=flags[r["pruner"]], popsize=args.popsize, rounds=args.rounds, slots=args.cpu_slots,
                     tags={"sim": r}) for r in picks]
    real = replay.run_many(args.jobs, searches, lambda r: print(".", end="", flush=True))
    tmp.cleanup()
    same_best = sum(r["best"] == r["sim"]["best"] for r in real)
    same_pruned = sum(r["pruned"] == r["sim"]["pruned"] for r in real)
    same_steps = sum(r["steps"] == r["sim"]["steps"] for r in real)
    diff = [f"{r['sim']['pruner']} {r['strategy']} seed {r['seed']}: tuner {r['best']:.2%} / {r['pruned']} pruned / "
            f"{r['steps']} steps, simulated {r['sim']['best']:.2%} / {r['sim']['pruned']} / {r['sim']['steps']}"
            for r in real if (r["best"], r["pruned"], r["steps"]) != (r["sim"]["best"], r["sim"]["pruned"], r["sim"]["steps"])]
    return "\n".join([f"Check against the replayed tuner (seeds {args.first_seed}..{args.first_seed + n - 1} of every "
                      f"configuration, {len(real)} searches): the same best trial in {same_best}, the same PRUNED count "
                      f"in {same_pruned}, the same trial-steps in {same_steps}.", *(f"- {d}" for d in diff)])


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    replay.add_search_args(ap, "configuration")
    ap.set_defaults(seeds=200)
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES)
    replay.add_pruner_args(ap, default=["none", "asha"])
    ap.add_argument("--check", type=int, default=0, metavar="N", help="also run the real replayed tuner for N seeds each")
    args = ap.parse_args(argv)
    flags = replay.pruner_flags(args)
    if "tpe" in args.strategies and "tpe" not in runnable(args.strategies):
        print("optuna is not installed: tpe left out (pip install 'autoft[tpe]')")
    args.strategies = runnable(args.strategies)
    land = load(LANDSCAPE)
    load_before, started = load_average(), time.perf_counter()
    runs = [dict(simulate(s, seed, extra, args.popsize, args.rounds, args.cpu_slots, land), pruner=pr)
            for pr, extra in flags.items() for s in args.strategies for seed in replay.seeds(args)]
    facts = replay.landscape_facts()
    text = table(runs, args.strategies, list(flags), facts["best"])
    text += ("\n\n\"found the grid best\": searches whose best trial is the grid's best point. p: two-sided "
             "Mann-Whitney U test of auto's best dev against this strategy's over the seeds (same pruner).")
    if args.check:
        text += "\n\n" + check(runs, args.check, args, flags)
    listed = "; ".join(f"{k}: {' '.join(v) or '(none)'}" for k, v in flags.items())
    command = replay.command_text("<strategy>", ["<pruner flags>"], args.popsize, args.rounds, args.cpu_slots)
    what = (f"Each search simulated in-process (benchmarks/demo_sim.py) as `{command}`; pruner flags: {listed}; "
            f"seeds {args.first_seed}..{args.first_seed + args.seeds - 1}.")
    print()
    print(text)
    if not args.no_append:
        from benchmarks.results import append_results

        append_results("demo landscape: strategies and pruning, many seeds (simulated)",
                       replay.header([f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])],
                                     started, load_before, what), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
