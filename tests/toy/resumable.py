"""Toy trial script that resumes, as autoft's train.py does (the tuner's contract for --resume):
its resume state lives in ``<--saved_params_dir>.resume/state.json``; a rerun continues from it
with the log line "resumed from step N of M"; a successful finish deletes it.

Each of --steps steps records itself (``<record_dir>/<tag>-steps.txt``, one line per step run),
saves the state and reports an intermediate result. --block_at_step K holds the first attempt
(never a resumed one) before step K until --gate exists, so a test can kill the tuner mid-trial.
The score is the quadratic toy's, so the search is the same as with tests/toy/quadratic.py.
"""

import argparse
import json
import os
import re
import shutil
import time

from autoft import report_final_result
from autoft.report import report_intermediate_result

SPACE = {"x": (0.0, 10.0, 3.0), "y": (-5.0, 5.0, 1.5), "n": (0, 40, 26)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--saved_params_dir", required=True)
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--y", type=float, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--block_at_step", type=int, default=-1)
    p.add_argument("--block_tag", default="")
    p.add_argument("--gate", default=None)
    p.add_argument("--record_dir", required=True)
    args = p.parse_args()
    m = re.search(r"round(\d+)[/\\]model-(\d+)$", args.saved_params_dir.rstrip("/"))
    tag = f"r{m.group(1)}i{m.group(2)}"
    state_dir = args.saved_params_dir.rstrip("/") + ".resume"
    state_file = os.path.join(state_dir, "state.json")
    start = 0
    if os.path.isfile(state_file):
        with open(state_file) as f:
            start = json.load(f)["step"]
        print(f"resumed from step {start} of {args.steps}", flush=True)
    values = {"x": args.x, "y": args.y, "n": args.n}
    final = 1.0 - 4.0 * sum(((values[k] - opt) / (hi - lo)) ** 2 for k, (lo, hi, opt) in SPACE.items())
    os.makedirs(args.record_dir, exist_ok=True)
    for step in range(start, args.steps):
        if step == args.block_at_step and tag == args.block_tag and start == 0 and args.gate:
            give_up = time.time() + 300
            while not os.path.exists(args.gate) and time.time() < give_up:
                time.sleep(0.02)
        print(f"step {step}", flush=True)
        with open(os.path.join(args.record_dir, f"{tag}-steps.txt"), "a") as f:
            f.write(f"{step}\n")
        os.makedirs(state_dir, exist_ok=True)
        with open(state_file + ".tmp", "w") as f:
            json.dump({"step": step + 1}, f)
        os.replace(state_file + ".tmp", state_file)
        report_intermediate_result(final * (step + 1) / args.steps, step + 1)
    os.makedirs(args.saved_params_dir, exist_ok=True)
    with open(os.path.join(args.saved_params_dir, "model.json"), "w") as f:
        json.dump({"values": values, "score": final}, f)
    report_final_result(final)
    shutil.rmtree(state_dir)


if __name__ == "__main__":
    main()
