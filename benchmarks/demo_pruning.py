"""Pruning on the demo landscape: fulltrail without a pruner vs --pruner asha vs --pruner median.

Each search is scripts/demo.sh's (`autofinetune train.py` in a subprocess on the embedded demo set,
scripts/demo_hparam.yaml, HAZero, fulltrail, 2 CPU slots, trials on the full train split for 2 epochs
with an evaluation every 217 steps reported through report_intermediate_result); only the pruner and
the strategy's --seed change, and every configuration runs the same trial count (popsize x rounds).
Trials train with train.py's fixed --seed 1, so a seed picks the strategy's points, not the data order.

Printed and appended to benchmarks/RESULTS.md (machine, date, versions, load, exact commands), per
pruner: median best dev accuracy over seeds (and min - max), trials PRUNED, trial-steps (the sum over
trials of the last step each reached: the training actually done) and trial-seconds, each also as a
ratio to the no-pruner searches' median, and the median wall time. The issue's goal: a pruner reaches
the same or a better median best at <= 0.5x the trial-steps of fulltrail.

    python benchmarks/demo_pruning.py                        # 5 seeds x 3 pruners, 4 x 3 trials each
    python benchmarks/demo_pruning.py --seeds 1 --pruners none asha --no-append   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_search import load_average, run_logged, tool, versions  # noqa: E402
from benchmarks.results import append_results, machine_line  # noqa: E402

PARAM_FILE = "scripts/demo_hparam.yaml"
TRIAL_OPTIONS = ["dataset", "demo", "eval_interval", "217"]  # as scripts/demo.sh
PRUNER_FLAGS = {  # as scripts/demo.sh for asha; median with the same minimum of peers
    "none": [],
    "asha": ["--pruner", "asha", "--prune_grace", "217", "--prune_eta", "2", "--prune_min_trials", "3",
             "--prune_max_step", "868"],
    "median": ["--pruner", "median", "--prune_min_trials", "3", "--prune_max_step", "868"],
}


def search_command(pruner: str, seed: int, out: Path, popsize: int, rounds: int, slots: int) -> List[str]:
    return [tool("autofinetune"), "train.py", f"--param_file={PARAM_FILE}", f"--cpu_slots={slots}",
            f"--popsize={popsize}", f"--round={rounds}", f"--output_dir={out}", "--evaluator=fulltrail",
            "--tuning_strategy=hazero", f"--seed={seed}", f"--python={sys.executable}", *PRUNER_FLAGS[pruner],
            *TRIAL_OPTIONS]


def summarise(out: Path) -> Dict[str, Any]:
    """Best OK score, PRUNED count, trial-steps and trial-seconds of one search's journal."""
    trials = [json.loads(x) for x in (out / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    trials = [t for t in trials if t.get("type") == "trial"]
    ok = [t["score"] for t in trials if t["status"] == "OK"]
    steps = [max((p[0] for p in t.get("intermediate") or []), default=0) for t in trials]
    return {"best": max(ok, default=float("nan")), "trials": len(trials),
            "pruned": sum(t["status"] == "PRUNED" for t in trials),
            "failed": sum(t["status"] == "FAILED" for t in trials),
            "steps": sum(steps), "seconds": sum(t["seconds"] for t in trials)}


def med(key: str, rs: Sequence[Dict[str, Any]]) -> float:
    return statistics.median(r[key] for r in rs)


def ratio(key: str, rs: Sequence[Dict[str, Any]], base: Sequence[Dict[str, Any]]) -> str:
    """median of ``key`` over ``rs`` / its median over the no-pruner searches."""
    return f"{med(key, rs) / med(key, base):.2f}" if base and med(key, base) else "-"


def table(runs: List[Dict[str, Any]], pruners: Sequence[str]) -> str:
    base = [r for r in runs if r["pruner"] == "none"]
    header = ["pruner", "seeds", "best dev (median)", "best min - max", "PRUNED", "FAILED", "trial-steps (median)",
              "x none", "trial-seconds (median)", "x none", "wall (median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in pruners:
        rs = [r for r in runs if r["pruner"] == p]
        bests = [r["best"] for r in rs]
        lines.append("| " + " | ".join([
            p, str(len(rs)), f"{statistics.median(bests):.2%}", f"{min(bests):.2%} - {max(bests):.2%}",
            str(sum(r["pruned"] for r in rs)), str(sum(r["failed"] for r in rs)), f"{med('steps', rs):g}",
            ratio("steps", rs, base), f"{med('seconds', rs):.0f}", ratio("seconds", rs, base), f"{med('wall', rs) / 60:.1f} min"]) + " |")
    lines += ["", "Per search:", ""]
    lines += [f"- {r['pruner']} seed {r['seed']}: best {r['best']:.2%}, {r['pruned']} pruned of {r['trials']}, "
              f"{r['steps']} trial-steps, {r['seconds']:.0f} trial-s, {r['wall'] / 60:.1f} min" for r in runs]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5, help="strategy seeds per pruner (default 5)")
    ap.add_argument("--first_seed", type=int, default=1)
    ap.add_argument("--pruners", nargs="+", default=list(PRUNER_FLAGS), choices=list(PRUNER_FLAGS))
    ap.add_argument("--popsize", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu_slots", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="keep the searches' output dirs here (a new dir)")
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)

    if args.keep is not None:
        if args.keep.exists() and any(args.keep.iterdir()):
            sys.exit(f"--keep {args.keep}: not empty; choose a new directory")
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep.resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="demo_pruning_")
        work = Path(tmp.name)
    load_before = load_average()
    start = time.perf_counter()
    run_logged([tool("autoft"), "data", "demo"], work / "data.log")
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for p in args.pruners:  # interleaved, so a change in the machine's load hits every pruner alike
            out = work / f"{p}-seed{seed}"
            t0 = time.perf_counter()
            run_logged(search_command(p, seed, out, args.popsize, args.rounds, args.cpu_slots),
                       out.with_suffix(".log"), ok_codes=(0, 1))
            r = {"pruner": p, "seed": seed, "wall": time.perf_counter() - t0, **summarise(out)}
            runs.append(r)
            print(f"{p:6} seed {seed}: best {r['best']:.4f}, {r['pruned']} pruned, {r['steps']} trial-steps, "
                  f"{r['wall']:.0f} s", flush=True)
    text = table(runs, args.pruners)
    print()
    print(text)
    command = " ".join(["python", f"benchmarks/{Path(__file__).name}", *(argv if argv is not None else sys.argv[1:])])
    header = (
        f"{machine_line()}. Versions: {versions()}. Load average (1 min) {load_before} before, {load_average()} "
        f"after. Command: `{command}` ({(time.perf_counter() - start) / 60:.1f} min wall). Each search: "
        f"`autofinetune train.py --param_file={PARAM_FILE} --cpu_slots={args.cpu_slots} --popsize={args.popsize} "
        f"--round={args.rounds} --evaluator=fulltrail --tuning_strategy=hazero --seed=<seed> <pruner flags> "
        f"{' '.join(TRIAL_OPTIONS)}`, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}; pruner flags: "
        f"{PRUNER_FLAGS}."
    )
    if not args.no_append:
        append_results("demo landscape: pruning", header, text)
    if args.keep is None:
        tmp.cleanup()
    else:
        print(f"outputs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
