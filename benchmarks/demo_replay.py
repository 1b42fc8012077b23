"""Searches on the recorded demo landscape through the real tuner CLI (demo_pruning.py, demo_search.py).

Each search is scripts/demo.sh's `autofinetune` command (scripts/demo_hparam.yaml, fulltrail, 2 CPU
slots, the trailing trial options), with benchmarks/replay_trial.py as the training script: every
trial plays back the recorded train.py run of its point (benchmarks/demo_landscape.json) at
AUTOFT_REPLAY_TIME_SCALE of its recorded speed, so the tuner's pool, pruner, strategy and journal
decide exactly as with live trials while a search costs seconds instead of minutes. What a search
cost is read from the journal and the recorded curves:

  trial-steps    per trial, the last step it reached (its last intermediate report; a whole run for
                 a trial that finished), summed
  trial-seconds  per trial, the recorded seconds of that last report (the whole run for a finished
                 one), summed: the CPU time the live trials would have taken (one slot each)
  wall           the replayed search's wall time / the time scale (the tuner's own 1 s tick is
                 stretched by the same factor, so this overstates a live search's wall a little)
  test           the test accuracy recorded for the best trial's point (predict.py --score)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from benchmarks.demo_landscape import LANDSCAPE, TRIAL_OPTIONS, key, load, space_sha1  # noqa: E402
from benchmarks.results import load_average, tool, versions  # noqa: E402

PARAM_FILE = "scripts/demo_hparam.yaml"
SCRIPT = "benchmarks/replay_trial.py"
DEFAULT_SCALE = 0.2
# scripts/demo.sh's search (tests/test_demo_files.py checks that demo.sh passes these).
DEMO_STRATEGY = "auto"
DEMO_POPSIZE = 6
DEMO_ROUNDS = 2
DEMO_PRUNER = ["--pruner", "asha", "--prune_grace", "217", "--prune_eta", "2", "--prune_min_trials", "2",
               "--prune_max_step", "868"]
DEMO_MEDIAN = ["--pruner", "median", "--prune_min_trials", "2", "--prune_max_step", "868"]  # same peers
PRUNER_FLAGS = {"none": [], "asha": DEMO_PRUNER, "median": DEMO_MEDIAN}  # the pruners the demo benchmarks compare


def scratch(keep: Optional[Path], prefix: str) -> Tuple[Path, Optional[tempfile.TemporaryDirectory]]:
    """The benchmark's work dir: --keep DIR (new or empty) or a temporary one (returned to clean up)."""
    if keep is None:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        return Path(tmp.name), tmp
    if keep.exists() and any(keep.iterdir()):
        sys.exit(f"--keep {keep}: not empty; choose a new directory")
    keep.mkdir(parents=True, exist_ok=True)
    return keep.resolve(), None


def search_argv(out: Path, strategy: str, seed: int, extra: Sequence[str], popsize: int, rounds: int,
                slots: int, param_file: str = PARAM_FILE) -> List[str]:
    return [tool("autofinetune"), SCRIPT, f"--param_file={param_file}", f"--cpu_slots={slots}",
            f"--popsize={popsize}", f"--round={rounds}", f"--output_dir={out}", "--evaluator=fulltrail",
            f"--tuning_strategy={strategy}", f"--seed={seed}", f"--python={sys.executable}", *extra,
            *TRIAL_OPTIONS]


def command_text(strategy: str, extra: Sequence[str], popsize: int, rounds: int, slots: int) -> str:
    """The live command a replayed search stands for (train.py instead of the replay script)."""
    argv = search_argv(Path("<out>"), strategy, 0, extra, popsize, rounds, slots)
    argv[0], argv[1] = "autofinetune", "train.py"
    return " ".join(a for a in argv if not a.startswith("--python=")).replace("--seed=0", "--seed=<seed>")


def trial_cost(trial: Dict[str, Any], point: Dict[str, Any]) -> Tuple[int, float]:
    """(steps, recorded seconds) a trial used: up to its last report, or its whole recorded run."""
    if trial["status"] != "PRUNED":
        return (point["curve"][-1][0] if point["curve"] else 0), point["seconds"]
    last = max((int(s) for s, _ in trial.get("intermediate") or []), default=0)
    reached = [c for c in point["curve"] if c[0] <= last]
    return last, (reached[-1][2] if reached else 0.0)


def run_search(out: Path, strategy: str, seed: int, extra: Sequence[str], popsize: int, rounds: int,
               slots: int, scale: float = DEFAULT_SCALE, landscape: Path = LANDSCAPE,
               param_file: str = PARAM_FILE) -> Dict[str, Any]:
    """One replayed search; its journal summarised (best dev and test, cost, wall)."""
    data = load(landscape)
    recorded = data.get("about", {}).get("space_sha1")
    if recorded and param_file == PARAM_FILE and recorded != space_sha1():
        sys.exit(f"{landscape} was recorded for another {PARAM_FILE}: rerun benchmarks/demo_landscape.py")
    points = data["points"]
    env = dict(os.environ, AUTOFT_REPLAY_LANDSCAPE=str(landscape), AUTOFT_REPLAY_TIME_SCALE=str(scale))
    start = time.perf_counter()
    with open(out.with_suffix(".log"), "w", encoding="utf-8") as log:
        rc = subprocess.call(search_argv(out, strategy, seed, extra, popsize, rounds, slots, param_file), cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    wall = (time.perf_counter() - start) / scale
    if rc not in (0, 1):  # 1: no trial succeeded, still a result
        sys.exit(f"search {out} exited {rc}; see {out.with_suffix('.log')}")
    trials = [json.loads(x) for x in (out / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    trials = sorted((t for t in trials if t.get("type") == "trial"), key=lambda t: t["trial"])
    return summary(strategy, seed, trials, points, wall)


def summary(strategy: str, seed: int, trials: Sequence[Dict[str, Any]], points: Dict[str, Any], wall: float) -> Dict[str, Any]:
    """A search's result from its trials (journal records, in trial order) and the landscape: best dev
    and its test accuracy, trials to the best, trial 0's score, PRUNED / FAILED, trial-steps / -seconds."""
    costs = [trial_cost(t, points[key(t["hparams"])]) for t in trials]
    ok = [t for t in trials if t["status"] == "OK"]
    best = max(ok, key=lambda t: t["score"], default=None)
    return {
        "strategy": strategy, "seed": seed, "trials": len(trials), "wall": wall,
        "best": best["score"] if best else float("nan"),
        "test": points[key(best["hparams"])]["test"] if best else float("nan"),
        "hparams": best["hparams"] if best else {},
        "to_best": (trials.index(best) + 1) if best else None,
        "init_score": next((t["score"] for t in trials if t["status"] == "OK" and t["trial"] == 0), None),
        "pruned": sum(t["status"] == "PRUNED" for t in trials),
        "failed": sum(t["status"] == "FAILED" for t in trials),
        "steps": sum(c[0] for c in costs), "seconds": sum(c[1] for c in costs),
        "statuses": [t["status"] for t in trials],
    }


def run_many(jobs: int, searches: Sequence[Dict[str, Any]], report) -> List[Dict[str, Any]]:
    """run_search for each dict of keyword arguments (plus ``tags``), ``jobs`` at a time (replayed trials mostly
    sleep, so searches can share the cores); ``report(result)`` as each ends. Results in input order."""
    from concurrent.futures import ThreadPoolExecutor

    def one(kwargs: Dict[str, Any]) -> Dict[str, Any]:
        tags = kwargs.pop("tags", {})  # copied into the result, e.g. {"pruner": "asha"}
        r = {**run_search(**kwargs), **tags}
        report(r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, [dict(s) for s in searches]))


def add_search_args(ap, per: str) -> None:
    """The flags both demo benchmarks take (seeds, budget, replay speed, output)."""
    ap.add_argument("--seeds", type=int, default=9, help=f"strategy seeds per {per} (default 9)")
    ap.add_argument("--first_seed", type=int, default=1)
    ap.add_argument("--popsize", type=int, default=DEMO_POPSIZE)
    ap.add_argument("--rounds", type=int, default=DEMO_ROUNDS)
    ap.add_argument("--cpu_slots", type=int, default=2)
    ap.add_argument("--time_scale", type=float, default=DEFAULT_SCALE)
    ap.add_argument("--jobs", type=int, default=4, help="searches at a time (replayed trials mostly sleep)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the searches' output dirs here (a new dir)")
    ap.add_argument("--no-append", action="store_true", help="print only, do not append to RESULTS.md")


def add_pruner_args(ap, default: Sequence[str]) -> None:
    """--pruners (names of PRUNER_FLAGS) and --variant NAME FLAGS (another pruner setting)."""
    ap.add_argument("--pruners", nargs="+", default=list(default), choices=list(PRUNER_FLAGS))
    ap.add_argument("--variant", nargs=2, action="append", default=[], metavar=("NAME", "FLAGS"),
                    help='another pruner setting, e.g. --variant asha-eta3 "--pruner asha --prune_eta 3"')


def pruner_flags(args) -> Dict[str, List[str]]:
    """name -> tuner flags for the chosen --pruners, then each --variant, in that order."""
    flags = {p: PRUNER_FLAGS[p] for p in args.pruners}
    flags.update({name: text.split() for name, text in args.variant})
    return flags


def seeds(args) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def finish(args, argv: Sequence[str], script: str, title: str, what: str, text: str, started: float,
           load_before: str, work: Path, tmp: Optional[tempfile.TemporaryDirectory]) -> int:
    """Print the table, append it to RESULTS.md (unless --no-append) and clean up the work dir."""
    from benchmarks.results import append_results

    print()
    print(text)
    what += (f" Replayed at --time_scale {args.time_scale} (wall = replay wall / scale), seeds "
             f"{args.first_seed}..{args.first_seed + args.seeds - 1}.")
    if not args.no_append:
        append_results(title, header([f"benchmarks/{Path(script).name}", *argv], started, load_before, what), text)
    if tmp is not None:
        tmp.cleanup()
    else:
        print(f"outputs kept in {work}")
    return 0


def landscape_facts(landscape: Path = LANDSCAPE) -> Dict[str, Any]:
    """The grid's best point, the init point's score and what a whole grid costs."""
    points = list(load(landscape)["points"].values())
    ok = [p for p in points if p["status"] == "OK"]
    top = max(ok, key=lambda p: p["final"])
    return {"points": len(points), "failed": len(points) - len(ok), "best": top["final"], "best_test": top["test"],
            "best_hparams": top["hparams"], "median": statistics.median(p["final"] for p in ok),
            "seconds": sum(p["seconds"] for p in points)}


def fmt_hp(hp: Dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in hp.items())


def header(argv: Sequence[str], started: float, load_before: str, what: str) -> str:
    """The RESULTS.md header: machine, versions, load, the command and what each search was."""
    from benchmarks.results import machine_line

    command = " ".join(["python", *argv])
    f = landscape_facts()
    return (f"{machine_line()}. Versions: {versions()}. Load average (1 min) {load_before} before, "
            f"{load_average()} after. Command: `{command}` ({(time.perf_counter() - started) / 60:.1f} min wall). "
            f"{what} Trials replay benchmarks/demo_landscape.json ({f['points']} points recorded with train.py, "
            f"one thread each: grid best {f['best']:.2%} dev / {f['best_test']:.2%} test at {fmt_hp(f['best_hparams'])}; "
            f"median point {f['median']:.2%}; the whole grid {f['seconds'] / 60:.0f} trial-minutes).")
