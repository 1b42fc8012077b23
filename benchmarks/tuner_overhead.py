"""How much wall time the tuner spends outside trials (issue 6 item 4; goal < 3%).

Runs the real `autofinetune` CLI on a toy script whose trials sleep a known time, with 1 and 2
CPU slots (popsize a multiple of the slots, so the round barrier leaves no slot idle), and
reports, from the journal's per-trial seconds and the console's timestamps:

  loop overhead  = 1 - sum(trial seconds) / (slots x time from "starts." to "ends.")
  fixed costs    = tuner start-up before the first round, and the final outputs (plot, VisualDL)
  sleep share    = sum(sleep) / (slots x whole wall): what a user sees end to end, including each
                   trial's Python start-up (inside the trial, but not the script's own work)

    python benchmarks/tuner_overhead.py [--sleep 2] [--popsize 4] [--rounds 3]

--scale 192,512,1024 instead measures the tuner's own cost per trial as the search grows (issue 13
item 10): trials of --sleep 0.05 s on 8 CPU slots, each run by a stand-in interpreter (a shell
script that sleeps and writes the result line, so a trial costs the machine almost nothing and
the tuner's CPU is what is left), and reports the tuner process's CPU seconds per trial
(getrusage of the tuner alone, its trials excluded). Linear bookkeeping keeps that flat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import append_results, machine_line  # noqa: E402

TOY = '''
import argparse, time
from autoft import report_final_result
p = argparse.ArgumentParser()
p.add_argument("--saved_params_dir"); p.add_argument("--a", type=float); p.add_argument("--b", type=float)
p.add_argument("--sleep", type=float)
args = p.parse_args()
time.sleep(args.sleep)
report_final_result(1.0 - (args.a - 0.3) ** 2 - (args.b - 0.6) ** 2)
'''
SPACE = """param_list:
- {name: a, init_value: 0.5, type: float, greater_than: 0.0, lower_than: 1.0}
- {name: b, init_value: 0.5, type: float, greater_than: 0.0, lower_than: 1.0}
"""


def run(work: Path, slots: int, popsize: int, rounds: int, sleep: float) -> dict:
    out = work / f"out_{slots}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-c", "from autoft.tuner.cli import main; main()", str(work / "toy.py"),
           "--param_file", str(work / "hp.yaml"), "--cpu_slots", str(slots), "--popsize", str(popsize),
           "--round", str(rounds), "--output_dir", str(out), "--evaluator", "fulltrail", "--seed", "0",
           "sleep", str(sleep)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    marks = {}
    for line in proc.stdout:
        if line.startswith("PaddleHub Autofinetune starts."):
            marks["start"] = time.perf_counter()
        elif line.startswith("PaddleHub Autofinetune ends."):
            marks["end"] = time.perf_counter()
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"autofinetune failed with exit code {proc.returncode}")
    trials = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()[1:]]
    busy = sum(t["seconds"] for t in trials)
    loop = marks["end"] - marks["start"]
    return {
        "slots": slots, "trials": len(trials), "wall": wall, "loop": loop,
        "startup": marks["start"] - t0, "finish": t0 + wall - marks["end"],
        "loop_overhead": 1 - busy / (slots * loop),
        "sleep_share": len(trials) * sleep / (slots * wall),
        "mean_trial": busy / len(trials),
    }


FAKE_PYTHON = """#!/bin/sh
# argv: -u <script> --saved_params_dir=<dir> --a=.. --b=.. --sleep=S
for a in "$@"; do case "$a" in --sleep=*) s="${a#--sleep=}";; --saved_params_dir=*) d="${a#*=}";; esac; done
sleep "$s"
mkdir -p "$d" && echo ok > "$d/model.txt"
printf '%s\\t0.5\\n' "$PaddleHub_AutoDL_Trial_ID" >> "$AUTOFT_RESULT_FILE"
"""
TUNER_CPU = ("import atexit, resource, sys\n"
             "def cpu():\n"
             "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
             "    print(f'TUNER_CPU {u.ru_utime + u.ru_stime}', file=sys.stderr)\n"
             "atexit.register(cpu)\n"
             "from autoft.tuner.cli import main; main()\n")


def run_scale(work: Path, trials: int, slots: int, sleep: float) -> dict:
    fake = work / "fake_python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    out = work / f"scale_{trials}"
    popsize = 8
    cmd = [sys.executable, "-c", TUNER_CPU, str(work / "toy.py"), "--param_file", str(work / "hp.yaml"),
           "--cpu_slots", str(slots), "--popsize", str(popsize), "--round", str(trials // popsize),
           "--output_dir", str(out), "--evaluator", "fulltrail", "--tuning_strategy", "pshe2", "--seed", "0",
           "--python", str(fake), "sleep", str(sleep)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"autofinetune failed with exit code {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = float(proc.stderr.rsplit("TUNER_CPU ", 1)[1].split()[0])
    return {"trials": trials, "wall": wall, "cpu": cpu, "cpu_per_trial_ms": 1000 * cpu / trials}


def main_scale(counts, slots: int, sleep: float) -> str:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "toy.py").write_text(TOY)
        (work / "hp.yaml").write_text(SPACE)
        rows = [run_scale(work, n, slots, sleep) for n in counts]
    lines = ["| trials | slots | wall s | tuner CPU s | tuner CPU per trial ms |", "|---|---|---|---|---|"]
    lines += [f"| {r['trials']} | {slots} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['cpu_per_trial_ms']:.1f} |"
              for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sleep", type=float, default=2.0)
    p.add_argument("--popsize", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no_append", action="store_true", help="print only, do not append to RESULTS.md")
    p.add_argument("--scale", default=None, metavar="N,N,...",
                   help="measure the tuner's CPU per trial at these trial counts instead (8 slots, --sleep 0.05)")
    args = p.parse_args()
    if args.scale:
        sleep = 0.05 if args.sleep == 2.0 else args.sleep
        table = main_scale([int(n) for n in args.scale.split(",")], 8, sleep)
        print(table)
        header = (f"{machine_line()}; load average {os.getloadavg()[0]:.1f} at the end. {sleep}s trials run by a "
                  f"stand-in interpreter on 8 CPU slots, popsize 8, pshe2/fulltrail; tuner CPU = getrusage of the "
                  f"tuner process alone (journal fsync, trials.csv, VisualDL, plots, its threads).")
        if not args.no_append:
            append_results("tuner_overhead --scale", header, table)
        return
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "toy.py").write_text(TOY)
        (work / "hp.yaml").write_text(SPACE)
        rows = [run(work, s, args.popsize, args.rounds, args.sleep) for s in (1, 2)]
    head = ("| slots | trials | wall s | loop s | start-up s | final outputs s | mean trial s | "
            "loop overhead | sleep share of wall |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['slots']} | {r['trials']} | {r['wall']:.2f} | {r['loop']:.2f} | {r['startup']:.2f} | "
                     f"{r['finish']:.2f} | {r['mean_trial']:.3f} | {100 * r['loop_overhead']:.2f}% | "
                     f"{100 * r['sleep_share']:.1f}% |")
    table = "\n".join(lines)
    print(table)
    header = (f"{machine_line()}. Trials sleep {args.sleep}s; popsize {args.popsize} x {args.rounds} rounds, "
              f"fulltrail, CPU slots. Loop overhead = wall time between the first round and the last trial's end "
              f"not spent inside a trial process (goal < 3%); start-up and final outputs are one-off costs; "
              f"'mean trial' - sleep = a trial's Python start-up + `import autoft`.")
    if not args.no_append:
        append_results("tuner_overhead", header, table)


if __name__ == "__main__":
    main()
