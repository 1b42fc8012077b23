"""The demo landscape: every point of scripts/demo_hparam.yaml trained once, its curve recorded.

scripts/demo_hparam.yaml is all `type: choice`, so the demo's search space is a finite grid (48
points). A trial is train.py with the tuner's flags (`--<name>=<value>`, `dataset demo
eval_interval 217`, train.py's fixed `--seed 1`) and the tuner's CPU share (AUTOFT_CPU_SLOTS, one
thread each on 2 cores with --workers 2): on the CPU it is deterministic, so a point's curve is
what any search that picks it gets (benchmarks/replay_trial.py checks a sample against live runs
with --verify). For each point: the status, every intermediate report (step, dev accuracy, seconds
since the trial started, stamped when the report reached its file), the final score, the trial's
seconds and the test accuracy of its best model (predict.py --score).

Written to benchmarks/demo_landscape.json (atomically after each point; a rerun computes only the
missing points, so it can be stopped and resumed). The searches of benchmarks/demo_pruning.py and
benchmarks/demo_search.py replay it through the real tuner.

    python benchmarks/demo_landscape.py                 # all missing points, 2 at a time
    python benchmarks/demo_landscape.py --verify 4      # rerun 4 recorded points, compare
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

PARAM_FILE = ROOT / "scripts" / "demo_hparam.yaml"
LANDSCAPE = ROOT / "benchmarks" / "demo_landscape.json"
TRIAL_OPTIONS = ["dataset", "demo", "eval_interval", "217"]  # as scripts/demo.sh


def grid(param_file: Path = PARAM_FILE) -> List[Dict[str, Any]]:
    """Every combination of the space's choice values, in file order."""
    from autoft.search.space import SearchSpace

    space = SearchSpace.load(param_file)
    if any(p.type != "choice" for p in space.params):
        sys.exit(f"{param_file}: the landscape needs every parameter to be a choice")
    names = [p.name for p in space.params]
    return [dict(zip(names, combo)) for combo in itertools.product(*(p.values for p in space.params))]


def key(hparams: Dict[str, Any]) -> str:
    """The point's id: its values in a canonical text form (`learning_rate=0.001,...`)."""
    return ",".join(f"{k}={float(v)!r}" for k, v in sorted(hparams.items()))


def space_sha1(param_file: Path = PARAM_FILE) -> str:
    """The search space file's sha1: a landscape recorded for another space is stale."""
    import hashlib

    return hashlib.sha1(param_file.read_bytes()).hexdigest()


def load(path: Path = LANDSCAPE) -> Dict[str, Any]:
    if not path.exists():
        return {"points": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def save(data: Dict[str, Any], path: Path = LANDSCAPE) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _stamp_reports(path: Path, start: float, stop: threading.Event, out: List[List[float]]) -> None:
    """Poll the intermediate file; stamp each new report with the seconds since `start`."""
    seen = 0
    while True:
        done = stop.is_set()
        if path.exists():
            lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.count("\t") == 2]
            for line in lines[seen:]:
                _, step, score = line.split("\t")
                out.append([int(step), float(score), round(time.perf_counter() - start, 2)])
            seen = len(lines)
        if done:
            return
        time.sleep(0.1)


def train_point(hparams: Dict[str, Any], workers: int) -> Dict[str, Any]:
    """Run one trial as the tuner would; its curve, final score, seconds and test accuracy."""
    with tempfile.TemporaryDirectory(prefix="landscape_") as tmp:
        t = Path(tmp)
        env = dict(os.environ, AUTOFT_CPU_SLOTS=str(workers), PaddleHub_AutoDL_Trial_ID="landscape",
                   AUTOFT_INTERMEDIATE_FILE=str(t / "intermediate"), AUTOFT_RESULT_FILE=str(t / "result"))
        env.pop("OMP_NUM_THREADS", None)
        argv = [sys.executable, "-u", "train.py", f"--saved_params_dir={t / 'model'}",
                *(f"--{k}={v}" for k, v in hparams.items()), *TRIAL_OPTIONS]
        curve: List[List[float]] = []
        stop = threading.Event()
        start = time.perf_counter()
        watcher = threading.Thread(target=_stamp_reports, args=(t / "intermediate", start, stop, curve))
        watcher.start()
        with open(t / "log", "w", encoding="utf-8") as log:
            rc = subprocess.call(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        seconds = round(time.perf_counter() - start, 2)
        stop.set()
        watcher.join()
        result = (t / "result").read_text(encoding="utf-8").split() if (t / "result").exists() else []
        point: Dict[str, Any] = {"hparams": hparams, "rc": rc, "seconds": seconds, "curve": curve}
        if rc != 0 or len(result) < 2:
            tail = (t / "log").read_text(encoding="utf-8", errors="replace").splitlines()[-1:]
            point.update(status="FAILED", final=None, test=None, log_tail=tail[0] if tail else "")
            return point
        point.update(status="OK", final=float(result[-1]))
        out = subprocess.run([sys.executable, "predict.py", "--dataset", "demo", "--checkpoint_dir",
                              str(t / "model"), "--output_dir", str(t / "pred"), "--score"],
                             cwd=ROOT, env=dict(env, AUTOFT_CPU_SLOTS=str(workers)), capture_output=True, text=True)
        test = [x.split()[2] for x in (out.stdout + out.stderr).splitlines() if x.startswith("test accuracy:")]
        point["test"] = float(test[0]) if test else None
        return point


def compute(points: Sequence[Dict[str, Any]], workers: int, path: Path) -> None:
    """Train the missing points, `workers` at a time, saving after each."""
    from benchmarks.results import versions

    data = load(path)
    if data.get("about", {}).get("space_sha1") not in (None, space_sha1()):
        sys.exit(f"{path} was recorded for another scripts/demo_hparam.yaml: move it away to record anew")
    data["about"] = {"space_sha1": space_sha1(), "trial_options": TRIAL_OPTIONS, "workers": workers,
                     "versions": data.get("about", {}).get("versions") or versions()}
    todo = [hp for hp in points if key(hp) not in data["points"]]
    print(f"{len(points) - len(todo)} of {len(points)} points recorded; {len(todo)} to train", flush=True)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                hp = todo.pop(0)
            p = train_point(hp, workers)
            p["load_after"] = Path("/proc/loadavg").read_text().split()[0]
            with lock:
                data["points"][key(hp)] = p
                save(data, path)
                print(f"{key(hp)}: {p['status']} final {p['final']} test {p['test']} {p['seconds']:.0f} s "
                      f"(load {p['load_after']})", flush=True)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def verify(n: int, workers: int, path: Path) -> int:
    """Rerun `n` recorded points (spread over the grid); 1 when a curve's scores differ."""
    data = load(path)
    keys = sorted(data["points"])
    picks = [keys[i * len(keys) // n] for i in range(n)] if n else []
    bad = 0
    for k in picks:
        old = data["points"][k]
        new = train_point(old["hparams"], workers)
        same = [c[:2] for c in old["curve"]] == [c[:2] for c in new["curve"]] and old["final"] == new["final"]
        bad += not same
        print(f"{k}: {'same curve and final score' if same else 'DIFFERENT'} "
              f"({old['seconds']:.0f} s recorded, {new['seconds']:.0f} s now)", flush=True)
    return 1 if bad else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2, help="trials at a time (= the tuner's --cpu_slots)")
    ap.add_argument("--out", type=Path, default=LANDSCAPE)
    ap.add_argument("--verify", type=int, default=0, help="rerun N recorded points and compare")
    args = ap.parse_args(argv)
    subprocess.run([str(Path(sys.executable).with_name("autoft")), "data", "demo"], cwd=ROOT, check=True, capture_output=True)
    if args.verify:
        return verify(args.verify, args.workers, args.out)
    compute(grid(), args.workers, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
