"""Toy training script for the tuner tests: a noisy quadratic of the hyper-parameters.

Parses PaddleHub's trial flags like a real train.py (--saved_params_dir, --epochs, --model_path,
one --<name>=<value> per hyper-parameter, trailing options), writes a small "model" into
--saved_params_dir and reports through autoft's protocol. It never imports Paddle.

score = 1 - sum_i ((v_i - opt_i) / (U_i - L_i))^2 * 4 + noise, optimum 1.0 (+/- 0.002). The noise
is a hash of the values, so a trial's score is reproducible (resume must reach the same best).
Test controls (trailing options): --record_dir DIR (write argv/env/start/end to DIR), --sleep S,
--crash_at / --hang_at / --silent_at "r0i1,r1i2" (crash, hang, or exit 0 without reporting),
--block_at TAGS --gate FILE (those trials wait until FILE exists: the search is held mid-round).
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time

from autoft import report_final_result

# name: (low, high, optimum) -- the tests' hparam.yaml uses these bounds.
SPACE = {"x": (0.0, 10.0, 3.0), "y": (-5.0, 5.0, 1.5), "n": (0, 40, 26)}


def main() -> None:
    t0 = time.time()
    p = argparse.ArgumentParser()
    p.add_argument("--saved_params_dir", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--model_path", default=None)
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--y", type=float, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--record_dir", default=None)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--crash_at", default="")
    p.add_argument("--hang_at", default="")
    p.add_argument("--silent_at", default="")
    p.add_argument("--block_at", default="")
    p.add_argument("--gate", default=None)
    p.add_argument("--dataset", default=None)
    args = p.parse_args()

    m = re.search(r"round(\d+)[/\\]model-(\d+)$", args.saved_params_dir.rstrip("/"))
    tag = f"r{m.group(1)}i{m.group(2)}" if m else "?"
    if args.record_dir:
        os.makedirs(args.record_dir, exist_ok=True)
        rec = {"tag": tag, "argv": sys.argv[1:], "start": t0, "pid": os.getpid(),
               "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "cpu_slots": os.environ.get("AUTOFT_CPU_SLOTS"),
               "trial_id": os.environ.get("PaddleHub_AutoDL_Trial_ID")}
        with open(os.path.join(args.record_dir, f"{tag}-{os.getpid()}-start.json"), "w") as f:
            json.dump(rec, f)
    if tag in args.hang_at.split(","):
        time.sleep(3600)
    if tag in args.block_at.split(",") and args.gate:
        give_up = time.time() + 300  # a test that failed before opening the gate leaves no process behind
        while not os.path.exists(args.gate) and time.time() < give_up:
            time.sleep(0.02)
    time.sleep(args.sleep)
    if tag in args.crash_at.split(","):
        raise RuntimeError(f"toy crash in {tag}")

    values = {"x": args.x, "y": args.y, "n": args.n}
    dist = sum(((values[k] - opt) / (hi - lo)) ** 2 for k, (lo, hi, opt) in SPACE.items())
    digest = hashlib.sha1(repr(sorted(values.items())).encode()).digest()
    noise = (digest[0] / 255.0 - 0.5) * 0.004
    score = 1.0 - 4.0 * dist + noise

    os.makedirs(args.saved_params_dir, exist_ok=True)
    with open(os.path.join(args.saved_params_dir, "model.json"), "w") as f:
        json.dump({"values": values, "score": score, "warm_start": args.model_path}, f)
    if tag not in args.silent_at.split(","):
        report_final_result(score)
    if args.record_dir:
        with open(os.path.join(args.record_dir, f"{tag}-{os.getpid()}-end.json"), "w") as f:
            json.dump({"tag": tag, "end": time.time(), "score": score}, f)


if __name__ == "__main__":
    main()
