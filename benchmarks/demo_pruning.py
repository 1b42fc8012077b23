"""Pruning on the demo landscape: fulltrail without a pruner vs --pruner asha vs --pruner median.

Each search is scripts/demo.sh's (benchmarks/demo_replay.py: the real tuner, trials replayed from
the recorded landscape); only the pruner and the strategy's --seed change, and every configuration
runs the same trial count (popsize x rounds). Trials train with train.py's fixed --seed 1, so a seed
picks the strategy's points, not the data order.

Printed and appended to benchmarks/RESULTS.md (machine, date, versions, load, exact commands), per
pruner: median best dev accuracy over seeds (and min - max) and the best trials' test accuracy,
trials PRUNED, trial-steps and trial-seconds (each also as a ratio to the no-pruner searches'
median) and the median wall time. The issue's goal: a pruner reaches the same or a better median
best at <= 0.5x the trial-steps of fulltrail.

    python benchmarks/demo_pruning.py                        # 9 seeds x 3 pruners, demo.sh's budget
    python benchmarks/demo_pruning.py --seeds 1 --pruners none asha --no-append   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks import demo_replay as replay  # noqa: E402
from benchmarks.results import load_average  # noqa: E402


def med(key: str, rs: Sequence[Dict[str, Any]]) -> float:
    return statistics.median(r[key] for r in rs)


def ratio(key: str, rs: Sequence[Dict[str, Any]], base: Sequence[Dict[str, Any]]) -> str:
    """median of ``key`` over ``rs`` / its median over the no-pruner searches."""
    return f"{med(key, rs) / med(key, base):.2f}" if base and med(key, base) else "-"


def table(runs: List[Dict[str, Any]], pruners: Sequence[str]) -> str:
    base = [r for r in runs if r["pruner"] == "none"]
    header = ["pruner", "seeds", "best dev (median)", "best min - max", "its test (median)", "PRUNED", "FAILED",
              "trial-steps (median)", "x none", "trial-seconds (median)", "x none", "wall (median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in pruners:
        rs = [r for r in runs if r["pruner"] == p]
        bests = [r["best"] for r in rs]
        lines.append("| " + " | ".join([
            p, str(len(rs)), f"{statistics.median(bests):.2%}", f"{min(bests):.2%} - {max(bests):.2%}",
            f"{med('test', rs):.2%}", str(sum(r["pruned"] for r in rs)), str(sum(r["failed"] for r in rs)),
            f"{med('steps', rs):g}", ratio("steps", rs, base), f"{med('seconds', rs):.0f}", ratio("seconds", rs, base),
            f"{med('wall', rs) / 60:.1f} min"]) + " |")
    lines += ["", "Per search:", ""]
    lines += [f"- {r['pruner']} seed {r['seed']}: best {r['best']:.2%} (test {r['test']:.2%}, "
              f"{replay.fmt_hp(r['hparams'])}), {r['pruned']} pruned of {r['trials']}, {r['steps']} trial-steps, "
              f"{r['seconds']:.0f} trial-s, {r['wall'] / 60:.1f} min" for r in runs]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    replay.add_search_args(ap, "pruner")
    replay.add_pruner_args(ap, default=replay.PRUNER_FLAGS)
    ap.add_argument("--strategy", default=replay.DEMO_STRATEGY)
    args = ap.parse_args(argv)

    flags = replay.pruner_flags(args)
    work, tmp = replay.scratch(args.keep, "demo_pruning_")
    load_before, start = load_average(), time.perf_counter()
    searches = [dict(out=work / f"{p}-seed{seed}", strategy=args.strategy, seed=seed, extra=flags[p],
                     popsize=args.popsize, rounds=args.rounds, slots=args.cpu_slots, scale=args.time_scale,
                     tags={"pruner": p})
                for seed in replay.seeds(args) for p in flags]

    def report(r: Dict[str, Any]) -> None:
        print(f"{r['pruner']:6} seed {r['seed']}: best {r['best']:.4f} (test {r['test']:.4f}), {r['pruned']} pruned, "
              f"{r['steps']} trial-steps, {r['wall'] / 60:.1f} min", flush=True)

    runs = replay.run_many(args.jobs, searches, report)
    what = (f"Each search: `{replay.command_text(args.strategy, ['<pruner flags>'], args.popsize, args.rounds, args.cpu_slots)}`; "
            f"pruner flags: {flags}.")
    return replay.finish(args, sys.argv[1:] if argv is None else argv, __file__, "demo landscape: pruning", what,
                         table(runs, list(flags)), start, load_before, work, tmp)


if __name__ == "__main__":
    sys.exit(main())
