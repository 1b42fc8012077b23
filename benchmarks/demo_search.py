"""Strategies on the demo landscape: auto, HAZero, PSHE2, random (and TPE when Optuna is installed).

Each search is scripts/demo.sh's (benchmarks/demo_replay.py: the real tuner, trials replayed from
the recorded landscape, demo.sh's pruner unless --pruner none); only the strategy and its --seed
change. Trials train with train.py's fixed --seed 1, so the seeds are the strategies' seeds: the
landscape is the same for every search.

Printed and appended to benchmarks/RESULTS.md (machine, date, versions, load, exact commands), per
strategy: the best dev accuracy (median over seeds, min - max), the best trials' test accuracy, how
many seeds beat the init-value point (train.py's defaults), trials to the best (1-based, in the
tuner's numbering), PRUNED and FAILED trials, trial-seconds and wall (medians).

    python benchmarks/demo_search.py                     # 9 seeds x every strategy, demo.sh's budget
    python benchmarks/demo_search.py --pruner none --rounds 5 --seeds 5
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
from benchmarks.demo_landscape import key, load  # noqa: E402
from benchmarks.results import load_average, runnable  # noqa: E402

STRATEGIES = ["auto", "hazero", "pshe2", "random", "tpe"]


def init_score() -> float:
    """The recorded score of the space's init point (train.py's demo defaults)."""
    from autoft.search.space import SearchSpace

    space = SearchSpace.load(ROOT / replay.PARAM_FILE)
    return load()["points"][key({p.name: p.init_value for p in space.params})]["final"]


def table(runs: List[Dict[str, Any]], strategies: Sequence[str], default: float) -> str:
    header = ["strategy", "seeds", "best dev (median)", "best min - max", "its test (median)", "> init point",
              "trials to best (median)", "PRUNED", "FAILED", "trial-seconds (median)", "wall (median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
             f"| init point (train.py's defaults) | - | {default:.2%} | - | - | - | - | - | - | - | - |"]
    for s in strategies:
        rs = [r for r in runs if r["strategy"] == s]
        bests = [r["best"] for r in rs]
        to_best = [r["to_best"] for r in rs if r["to_best"] is not None]
        lines.append("| " + " | ".join([
            s, str(len(rs)), f"{statistics.median(bests):.2%}", f"{min(bests):.2%} - {max(bests):.2%}",
            f"{statistics.median(r['test'] for r in rs):.2%}", f"{sum(b > default for b in bests)}/{len(rs)}",
            f"{statistics.median(to_best):g}" if to_best else "-", str(sum(r["pruned"] for r in rs)),
            str(sum(r["failed"] for r in rs)), f"{statistics.median(r['seconds'] for r in rs):.0f}",
            f"{statistics.median(r['wall'] for r in rs) / 60:.1f} min"]) + " |")
    lines += ["", "Best trial per search:", ""]
    lines += [f"- {r['strategy']} seed {r['seed']}: {r['best']:.2%} (test {r['test']:.2%}) at trial {r['to_best']} "
              f"of {r['trials']} ({replay.fmt_hp(r['hparams'])}), {r['pruned']} pruned" for r in runs]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    replay.add_search_args(ap, "strategy")
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=runnable(STRATEGIES))
    ap.add_argument("--pruner", choices=["demo", "none"], default="demo", help="demo.sh's ASHA flags, or none")
    args = ap.parse_args(argv)

    work, tmp = replay.scratch(args.keep, "demo_search_")
    load_before, start = load_average(), time.perf_counter()
    extra = replay.DEMO_PRUNER if args.pruner == "demo" else []
    searches = [dict(out=work / f"{s}-seed{seed}", strategy=s, seed=seed, extra=extra, popsize=args.popsize,
                     rounds=args.rounds, slots=args.cpu_slots, scale=args.time_scale)
                for seed in replay.seeds(args) for s in args.strategies]

    def report(r: Dict[str, Any]) -> None:
        print(f"{r['strategy']:7} seed {r['seed']}: best {r['best']:.4f} (test {r['test']:.4f}) at trial "
              f"{r['to_best']} of {r['trials']}, {r['pruned']} pruned, {r['wall'] / 60:.1f} min", flush=True)

    runs = replay.run_many(args.jobs, searches, report)
    what = f"Each search: `{replay.command_text('<strategy>', extra, args.popsize, args.rounds, args.cpu_slots)}`."
    return replay.finish(args, sys.argv[1:] if argv is None else argv, __file__, "demo landscape: strategies", what,
                         table(runs, args.strategies, init_score()), start, load_before, work, tmp)


if __name__ == "__main__":
    sys.exit(main())
