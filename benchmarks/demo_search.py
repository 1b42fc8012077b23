"""The demo fine-tuning landscape: HAZero, PSHE2 and random search through the real tuner CLI.

Each search is what scripts/demo.sh ran before it used pruning (`autofinetune train.py` in a
subprocess): the embedded demo set, the fulltrail evaluator, 2 CPU slots and a small trial budget
(3000 training examples, 2 epochs, batch 16, max_seq_len 64), with scripts/demo_hparam.yaml's space;
only the strategy and its --seed change. (demo.sh now trains every trial on the full split and
prunes; benchmarks/demo_pruning.py measures that design.) One train.py trial with the search space's
init values (the "default-hparams trial") is run once for reference. Trials train with train.py's
fixed --seed 1, so the seeds below are the strategies' seeds: the landscape is the same for every search.

Printed and appended to benchmarks/RESULTS.md (machine, date, versions, exact budget), per strategy:
  best        dev accuracy of the best trial: median over seeds, and min - max
  > default   seeds whose best beats the default-hparams trial
  trials      trials run (HAZero may stop early); to best = trial number (1-based, in the order the
              tuner numbers them) at which the search's best score was first reached: median, min - max
  failed      FAILED trials, summed over seeds

    python benchmarks/demo_search.py                  # 1 seed each, 4 x 5: 10.5 min (2 busy cores)
    python benchmarks/demo_search.py --seeds 2 --keep /tmp/demo_landscape
    python benchmarks/demo_search.py --first_seed 2      # seed 2 only (seed 1 already run)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
# Import siblings as benchmarks.<name>: with benchmarks/ itself on sys.path a sibling file could
# shadow a standard module of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.results import append_results, machine_line  # noqa: E402

STRATEGIES = ["hazero", "pshe2", "random"]
PARAM_FILE = "scripts/demo_hparam.yaml"


def trial_options(examples: int, epochs: int) -> List[str]:
    """The demo trial options, as demo.sh passes them (trailing `key value` pairs)."""
    return ["dataset", "demo", "max_train_examples", str(examples), "epochs", str(epochs),
            "batch_size", "16", "max_seq_len", "64"]


def tool(name: str) -> str:
    """A console script of this environment (next to the interpreter), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found next to {sys.executable} or on PATH: pip install -e {ROOT}")
    return found


def run_logged(argv: Sequence[str], log: Path, ok_codes=(0,)) -> int:
    """Run argv from the repo root with stdout+stderr to `log`; exit with its tail on failure."""
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.call(list(argv), cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if rc not in ok_codes:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
        sys.exit(f"{' '.join(argv)}\nexited {rc}; last lines of {log}:\n{tail}")
    return rc


def default_trial(out: Path, examples: int, epochs: int) -> float:
    """Dev accuracy of one train.py trial with the init values of the search space."""
    import yaml

    params = yaml.safe_load((ROOT / PARAM_FILE).read_text(encoding="utf-8"))["param_list"]
    argv = [sys.executable, "train.py"]
    for p in params:
        argv += [f"--{p['name']}", str(p["init_value"])]
    argv += ["--checkpoint_dir", str(out / "default_trial")]
    opts = trial_options(examples, epochs)
    argv += [f"--{k}={v}" for k, v in zip(opts[::2], opts[1::2])]
    run_logged(argv, out / "default_trial.log")
    state = json.loads((out / "default_trial" / "best_model" / "train_state.json").read_text(encoding="utf-8"))
    return float(state["score"])


def run_search(strategy: str, seed: int, out: Path, popsize: int, rounds: int, slots: int,
               examples: int, epochs: int) -> Dict[str, Any]:
    """One `autofinetune` search; its journaled trials summarised."""
    argv = [tool("autofinetune"), "train.py", f"--param_file={PARAM_FILE}", f"--cpu_slots={slots}",
            f"--popsize={popsize}", f"--round={rounds}", f"--output_dir={out}", "--evaluator=fulltrail",
            f"--tuning_strategy={strategy}", f"--seed={seed}", f"--python={sys.executable}",
            *trial_options(examples, epochs)]
    start = time.perf_counter()
    # Exit 1 = no trial succeeded: still a result (all failed), read from the journal.
    run_logged(argv, out.with_suffix(".log"), ok_codes=(0, 1))
    wall = time.perf_counter() - start
    trials = []
    for line in (out / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("type") == "trial":
            trials.append(rec)
    trials.sort(key=lambda r: r["trial"])
    ok = [r for r in trials if r["status"] == "OK"]
    best = max((r["score"] for r in ok), default=float("nan"))
    first = next((i + 1 for i, r in enumerate(trials) if r["status"] == "OK" and r["score"] == best), None)
    best_hp = next((r["hparams"] for r in ok if r["score"] == best), {})
    return {"strategy": strategy, "seed": seed, "best": best, "to_best": first, "trials": len(trials),
            "failed": len(trials) - len(ok), "wall": wall, "hparams": best_hp}


def fmt_hp(hp: Dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in hp.items())


def table(runs: List[Dict[str, Any]], default: float, strategies: Sequence[str]) -> str:
    header = ["strategy", "seeds", "best dev acc (median)", "best min - max", "> default",
              "trials run", "trials to best (median)", "to best min - max", "failed", "search wall (median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.append(f"| default hparams (init values) | - | {default:.2%} | - | - | 1 | - | - | 0 | - |")
    for s in strategies:
        rs = [r for r in runs if r["strategy"] == s]
        bests = [r["best"] for r in rs]
        to_best = [r["to_best"] for r in rs if r["to_best"] is not None]
        lines.append("| " + " | ".join([
            s, str(len(rs)), f"{statistics.median(bests):.2%}", f"{min(bests):.2%} - {max(bests):.2%}",
            f"{sum(b > default for b in bests)}/{len(rs)}",
            "/".join(str(r["trials"]) for r in rs),
            f"{statistics.median(to_best):g}" if to_best else "-",
            f"{min(to_best)} - {max(to_best)}" if to_best else "-",
            str(sum(r["failed"] for r in rs)),
            f"{statistics.median(r['wall'] for r in rs) / 60:.1f} min",
        ]) + " |")
    lines += ["", "Best trial per search:", ""]
    lines += [f"- {r['strategy']} seed {r['seed']}: {r['best']:.2%} at trial {r['to_best']} of {r['trials']} "
              f"({fmt_hp(r['hparams'])}); {r['wall'] / 60:.1f} min" for r in runs]
    return "\n".join(lines)


def versions() -> str:
    parts = [f"python {sys.version.split()[0]}"]
    for dist in ("paddlepaddle", "numpy", "cma", "autoft"):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        parts.append(f"git {commit}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(parts)


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1, help="N strategy seeds per strategy (default 1)")
    ap.add_argument("--first_seed", type=int, default=1, help="seeds are first_seed .. first_seed+N-1")
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    ap.add_argument("--popsize", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu_slots", type=int, default=2)
    ap.add_argument("--examples", type=int, default=3000, help="max_train_examples of each trial")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="keep the searches' output dirs here")
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")
    args = ap.parse_args(argv)

    if args.keep is not None:
        if args.keep.exists() and any(args.keep.iterdir()):
            sys.exit(f"--keep {args.keep}: not empty; choose a new directory")
        args.keep.mkdir(parents=True, exist_ok=True)
        work = args.keep.resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="demo_search_")
        work = Path(tmp.name)
    load_before = load_average()
    wall = time.perf_counter()
    run_logged([tool("autoft"), "data", "demo"], work / "data.log")
    default = default_trial(work, args.examples, args.epochs)
    print(f"default-hparams trial: dev accuracy {default:.4f}", flush=True)
    runs = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        for s in args.strategies:
            r = run_search(s, seed, work / f"{s}-seed{seed}", args.popsize, args.rounds, args.cpu_slots,
                           args.examples, args.epochs)
            runs.append(r)
            print(f"{s:7} seed {seed}: best {r['best']:.4f} at trial {r['to_best']} of {r['trials']}, "
                  f"{r['failed']} failed, {r['wall']:.0f} s", flush=True)
    wall = time.perf_counter() - wall
    text = table(runs, default, args.strategies)
    print()
    print(text)

    command = " ".join(["python", f"benchmarks/{Path(__file__).name}",
                        *(argv if argv is not None else sys.argv[1:])])
    header = (
        f"{machine_line()}. Versions: {versions()}. Load average (1 min) {load_before} before, "
        f"{load_average()} after.\n"
        f"Command: `{command}` ({wall / 60:.1f} min wall). Budget per search: `autofinetune train.py "
        f"--param_file={PARAM_FILE} --cpu_slots={args.cpu_slots} --popsize={args.popsize} "
        f"--round={args.rounds} --evaluator=fulltrail --tuning_strategy=<strategy> --seed=<seed> "
        f"{' '.join(trial_options(args.examples, args.epochs))}` ({args.popsize * args.rounds} trials), "
        f"strategy seeds {seeds[0]}..{seeds[-1]}; trials train with train.py's fixed seed 1 (same landscape for "
        "every search). Default hparams = one train.py trial with the init values."
    )
    if not args.no_append:
        append_results("demo fine-tuning landscape", header, text)
    if args.keep is None:
        tmp.cleanup()
    else:
        print(f"outputs kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
