"""A tuner trial that replays a recorded demo-landscape point instead of training it.

The tuner runs it like train.py (`autofinetune benchmarks/replay_trial.py --param_file
scripts/demo_hparam.yaml ...`): from the trial's `--<name>=<value>` flags it looks the point up in
the landscape (benchmarks/demo_landscape.py recorded every point of the all-choice demo space with
train.py) and plays it back in time: each recorded intermediate report at its recorded second times
AUTOFT_REPLAY_TIME_SCALE (default 0.1), then the final score at the trial's end, or the recorded
failure. The pruner, the strategies, the journal and the pool are the real tuner's; only the
training is replaced by its recorded (deterministic) outcome. AUTOFT_REPLAY_LANDSCAPE names the JSON
(default benchmarks/demo_landscape.json). Unknown flags (the trailing `dataset demo ...`) are ignored.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from autoft import report_final_result, report_intermediate_result  # noqa: E402
from benchmarks.demo_landscape import key  # noqa: E402


def flags(argv):
    """{name: text} of the `--name=value` flags."""
    out = {}
    for arg in argv:
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg[2:].partition("=")
            out[name] = value
    return out


def find_point(points, given):
    """The recorded point whose hyper-parameters all equal the trial's flags (by the landscape's key)."""
    names = sorted({n for p in points.values() for n in p["hparams"]})
    try:
        return points[key({n: float(given[n]) for n in names})]
    except (KeyError, ValueError):
        sys.exit(f"replay_trial: no recorded point for {({n: given.get(n) for n in names})}")


def main(argv=None) -> int:
    given = flags(sys.argv[1:] if argv is None else argv)
    landscape = Path(os.environ.get("AUTOFT_REPLAY_LANDSCAPE", ROOT / "benchmarks" / "demo_landscape.json"))
    scale = float(os.environ.get("AUTOFT_REPLAY_TIME_SCALE", "0.1"))
    point = find_point(json.loads(landscape.read_text(encoding="utf-8"))["points"], given)
    start = time.perf_counter()

    def wait_until(recorded_seconds: float) -> None:
        time.sleep(max(0.0, start + recorded_seconds * scale - time.perf_counter()))

    if given.get("saved_params_dir"):
        model = Path(given["saved_params_dir"])
        model.mkdir(parents=True, exist_ok=True)
        (model / "replayed_point.json").write_text(json.dumps(point["hparams"]) + "\n", encoding="utf-8")
    for step, score, seconds in point["curve"]:
        wait_until(seconds)
        report_intermediate_result(score, step)
        print(f"step {step}: dev accuracy {score:.4f}", flush=True)
    wait_until(point["seconds"])
    if point["status"] != "OK":
        print(point.get("log_tail") or "recorded trial failed", file=sys.stderr)
        return 1
    report_final_result(point["final"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
