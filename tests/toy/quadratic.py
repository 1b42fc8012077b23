"""Toy training script for the tuner tests: a noisy quadratic of the hyper-parameters.

Parses PaddleHub's trial flags like a real train.py (--saved_params_dir, --epochs, --model_path,
one --<name>=<value> per hyper-parameter, trailing options), writes a small "model" into
--saved_params_dir and reports through autoft's protocol. It never imports Paddle.

score = 1 - sum_i ((v_i - opt_i) / (U_i - L_i))^2 * 4 + noise, optimum 1.0 (+/- 0.002). The noise
is a hash of the values, so a trial's score is reproducible (resume must reach the same best).
A warm start (--model_path) from a dir without the donor's model.json fails, as a real
train.py would. Test controls (trailing options): --record_dir DIR (write argv/env/start/end to
DIR; the start record also lists the non-empty model dirs of earlier rounds, to see what
--keep_models left), --sleep S, --crash_at / --hang_at / --silent_at "r0i1,r1i2" (crash, hang,
or exit 0 without reporting), --block_at TAGS --gate FILE (those trials wait until FILE exists:
the search is held mid-round), --wait_peers N (wait until N trials have written their start
record: a barrier that shows trials overlap without timing them).
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
    p.add_argument("--wait_peers", type=int, default=0)
    p.add_argument("--dataset", default=None)
    p.add_argument("--model_dir", default=None)  # the pretrained model, as train.py's (unused here)
    p.add_argument("--score_at", default="")
    p.add_argument("--score_text", default="nan")
    p.add_argument("--grandchild_at", default="")
    p.add_argument("--stubborn_at", default="")
    p.add_argument("--oom_at", default="")
    p.add_argument("--fail_all", default=None)
    p.add_argument("--check", action="store_true")
    p.add_argument("--check_error", default=None)
    p.add_argument("--check_estimate", type=int, default=None)
    args = p.parse_args()
    if args.check:  # autoft's train.py contract: exit 0 with "check OK", or exit 2 with one error line
        if args.check_error:
            print(f"error: {args.check_error}", file=sys.stderr)
            sys.exit(2)
        if args.check_estimate is not None:  # as train.py --check prints it (autoft.tuner.gpu_memory)
            print(f"estimated GPU peak per trial (bytes): {args.check_estimate}")
        print("check OK: toy flags resolved")
        return

    m = re.search(r"round(\d+)[/\\]model-(\d+)$", args.saved_params_dir.rstrip("/"))
    tag = f"r{m.group(1)}i{m.group(2)}" if m else "?"
    peers_met = None
    if tag in args.stubborn_at.split(",") and args.record_dir:
        import signal

        def noted(signum, frame):
            with open(os.path.join(args.record_dir, f"{tag}-{os.getpid()}-sigterm-{time.time()}"), "w"):
                pass

        os.makedirs(args.record_dir, exist_ok=True)
        signal.signal(signal.SIGTERM, noted)
    if args.record_dir:
        os.makedirs(args.record_dir, exist_ok=True)
        rec = {"tag": tag, "argv": sys.argv[1:], "start": t0, "pid": os.getpid(),
               "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "cpu_slots": os.environ.get("AUTOFT_CPU_SLOTS"),
               "trial_id": os.environ.get("PaddleHub_AutoDL_Trial_ID"),
               "models_seen": models_seen(args.saved_params_dir, int(m.group(1))) if m else []}
        start_file = os.path.join(args.record_dir, f"{tag}-{os.getpid()}-start.json")
        with open(start_file + ".tmp", "w") as f:
            json.dump(rec, f)
        os.replace(start_file + ".tmp", start_file)  # a peer or a test never reads half a record
        if args.wait_peers:
            give_up = time.time() + 60  # a pool that runs trials one at a time fails the test, not hangs it
            while time.time() < give_up:
                peers_met = sum(n.endswith("-start.json") for n in os.listdir(args.record_dir)) >= args.wait_peers
                if peers_met:
                    break
                time.sleep(0.02)
    if tag in args.grandchild_at.split(",") and args.record_dir:
        import subprocess

        marker = f"grandchild-of-{tag}-in-{args.record_dir}"  # unique to this test's record dir
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", marker])
        with open(os.path.join(args.record_dir, f"{tag}-grandchild.json"), "w") as f:
            json.dump({"pid": child.pid}, f)
    if tag in args.stubborn_at.split(",") and args.record_dir:
        while True:  # SIGTERM is noted (handler installed before the start record) and ignored
            time.sleep(0.05)
    if args.fail_all is not None:
        print(args.fail_all, file=sys.stderr)
        sys.exit(2)
    if tag in args.oom_at.split(","):
        print("ResourceExhaustedError: Out of memory error on GPU 0. Cannot allocate 1.2GB memory", file=sys.stderr)
        sys.exit(1)
    if tag in args.hang_at.split(","):
        time.sleep(3600)
    if tag in args.block_at.split(",") and args.gate:
        give_up = time.time() + 300  # a test that failed before opening the gate leaves no process behind
        while not os.path.exists(args.gate) and time.time() < give_up:
            time.sleep(0.02)
    time.sleep(args.sleep)
    if args.model_path is not None and not os.path.isfile(os.path.join(args.model_path, "model.json")):
        raise FileNotFoundError(f"warm start: no model.json in --model_path {args.model_path}")
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
    if tag in args.score_at.split(","):
        with open(os.environ["AUTOFT_RESULT_FILE"], "a") as f:
            f.write(f"{os.environ['PaddleHub_AutoDL_Trial_ID']}\t{args.score_text}\n")
    elif tag not in args.silent_at.split(","):
        report_final_result(score)
    if args.record_dir:
        with open(os.path.join(args.record_dir, f"{tag}-{os.getpid()}-end.json"), "w") as f:
            json.dump({"tag": tag, "end": time.time(), "score": score, "peers_met": peers_met}, f)


def models_seen(saved_params_dir: str, this_round: int) -> list:
    """``round<k>/model-<i>`` of every non-empty model dir of rounds before this one, sorted."""
    out = os.path.dirname(os.path.dirname(os.path.abspath(saved_params_dir)))
    seen = []
    for name in os.listdir(out):
        r = re.fullmatch(r"round(\d+)", name)
        if not r or int(r.group(1)) >= this_round:
            continue
        for sub in os.listdir(os.path.join(out, name)):
            path = os.path.join(out, name, sub)
            if sub.startswith("model-") and os.path.isdir(path) and os.listdir(path):
                seen.append(f"{name}/{sub}")
    return sorted(seen)


if __name__ == "__main__":
    main()
