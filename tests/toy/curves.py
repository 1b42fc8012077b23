"""Toy training script with known learning curves, for the pruning and retry tests.

Takes PaddleHub's trial flags (--saved_params_dir, one --<name>=<value> per hyper-parameter,
which it ignores) and plays the curve the test gave its trial: ``--curves_file FILE`` is JSON
``{"r0i1": [[step, score], ...], ...}`` keyed by the trial's tag (round<k>/model-<i> -> r<k>i<i>).
Each point is reported with ``report_intermediate_result``; the final score (the curve's best
point, as train.py reports its best evaluation) with ``report_final_result``. A tag without a
curve reports nothing intermediate (a third-party script) and a final score of 0.5.

Test controls (trailing options): --hold_at "r0i2@10,r0i3" (after reporting that step, or its last
point, the trial waits up to 120 s, so only the tuner can end it: a trial the test expects to be
pruned there), --pace S (sleep S seconds between points),
--attempts_dir DIR (count this tag's attempts there), --crash_attempts "r0i1:2,..." (the first N
attempts of a tag crash, later ones succeed), --hang_attempt "r0i0:2" (that attempt sleeps 120 s
first), --oom_at / --usage_at TAGS (fail like an out-of-memory
crash / a usage error, every attempt), --record_dir DIR (a start record per attempt).
"""

import argparse
import json
import os
import re
import sys
import time

from autoft import report_final_result, report_intermediate_result


def tags(text: str) -> set:
    return {t for t in text.split(",") if t}


def attempt_number(attempts_dir: str, tag: str) -> int:
    """This tag's attempt, 1-based, counted by files in ``attempts_dir``."""
    os.makedirs(attempts_dir, exist_ok=True)
    n = 1 + sum(name.startswith(f"{tag}.") for name in os.listdir(attempts_dir))
    with open(os.path.join(attempts_dir, f"{tag}.{n}"), "w") as f:
        f.write(str(os.getpid()))
    return n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--saved_params_dir", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--model_path", default=None)
    p.add_argument("--curves_file", default=None)
    p.add_argument("--hold_at", default="")
    p.add_argument("--pace", type=float, default=0.0)
    p.add_argument("--attempts_dir", default=None)
    p.add_argument("--crash_attempts", default="")
    p.add_argument("--hang_attempt", default="")
    p.add_argument("--oom_at", default="")
    p.add_argument("--usage_at", default="")
    p.add_argument("--record_dir", default=None)
    args, _hparams = p.parse_known_args()  # every --<hparam>=<value> is ignored: the curve is the test's

    m = re.search(r"round(\d+)[/\\]model-(\d+)$", args.saved_params_dir.rstrip("/"))
    tag = f"r{m.group(1)}i{m.group(2)}" if m else "?"
    attempt = attempt_number(args.attempts_dir, tag) if args.attempts_dir else 1
    if args.record_dir:
        os.makedirs(args.record_dir, exist_ok=True)
        with open(os.path.join(args.record_dir, f"{tag}-{attempt}-{os.getpid()}-start.json"), "w") as f:
            json.dump({"tag": tag, "attempt": attempt, "pid": os.getpid(), "start": time.time()}, f)
    crashes = dict(item.split(":") for item in args.crash_attempts.split(",") if item)
    if attempt <= int(crashes.get(tag, 0)):
        print(f"toy: attempt {attempt} of {tag} crashes", flush=True)
        sys.exit(3)
    hangs = dict(item.split(":") for item in args.hang_attempt.split(",") if item)
    if attempt == int(hangs.get(tag, 0)):
        time.sleep(120)  # e.g. the tuner is killed meanwhile
    if tag in tags(args.oom_at):
        print("ResourceExhaustedError: Out of memory error on GPU 0 (toy)", flush=True)
        sys.exit(1)
    if tag in tags(args.usage_at):
        print("curves.py: error: unrecognized arguments: --bogus=1 (toy)", flush=True)
        sys.exit(2)

    curves = {}
    if args.curves_file:
        with open(args.curves_file, encoding="utf-8") as f:
            curves = json.load(f)
    curve = curves.get(tag, [])
    holds = dict((item.split("@") + [""])[:2] for item in tags(args.hold_at))
    for i, (step, score) in enumerate(curve):
        report_intermediate_result(score, step)
        if tag in holds and (holds[tag] == str(step) or (not holds[tag] and i == len(curve) - 1)):
            print(f"toy: {tag} waits for the tuner at step {step}", flush=True)  # the log's last line
            time.sleep(120)  # only the tuner ends it; a tuner that does not makes the test fail
        time.sleep(args.pace)
    os.makedirs(args.saved_params_dir, exist_ok=True)
    with open(os.path.join(args.saved_params_dir, "model.json"), "w") as f:
        json.dump({"tag": tag, "curve": curve}, f)
    report_final_result(max((s for _, s in curve), default=0.5))


if __name__ == "__main__":
    main()
