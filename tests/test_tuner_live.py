"""Live outputs: trials.csv after every trial, search.png and the VisualDL scalars after every
round, while the search is still running, and no duplicate scalars after --resume.

The toy's ``block_at r2i1 gate FILE`` holds trial 1 of round 2 until FILE exists, so the test
can look at the output directory in the middle of a search without timing assumptions."""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.test_tuner_cli import SPACE_YAML, TOY, run_cli
from tests.test_tuner_search import wait_for


def vdl_scalars(logdir, tag):
    """[(step, value)] of ``tag`` in the single VisualDL file of ``logdir``."""
    from visualdl import LogReader

    files = sorted(Path(logdir).glob("vdlrecords.*.log"))
    assert len(files) == 1, files  # one file: a resumed search rebuilt the log instead of adding one
    data = LogReader(file_path=str(files[0])).get_data("scalar", tag)
    # VisualDL stores float32: round to compare with the float64 scores in trials.csv.
    return [(int(x.id), round(float(x.value), 5)) for x in data]


def csv_rows(path):
    return list(csv.DictReader(Path(path).open()))


def running_trials(out):
    try:
        return [e["trial"] for e in json.loads((out / ".running.json").read_text())]
    except (FileNotFoundError, ValueError):
        return []


def test_outputs_are_live_mid_search_and_a_resumed_search_writes_each_round_once(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    gate = tmp_path / "gate"
    out = tmp_path / "out"
    args = [TOY, "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "1", "--popsize", "2",
            "--seed", "7", "--evaluator", "fulltrail"]
    trailing = ["block_at", "r2i1", "gate", gate]

    # 1. A finished one-round search.
    first = run_cli([*args, "--round", "1", *trailing], tmp_path)
    assert first.returncode == 0, first.stderr
    png_after_round0 = (out / "search.png").read_bytes()
    assert [s for s, _ in vdl_scalars(out / "visualization", "hyperparameter_tuning/best_eval_value")] == [1]

    # 2. Resumed to 3 rounds; it blocks inside round 2 (trial r2i1 waits for the gate).
    code = "import sys; from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()"
    tuner = subprocess.Popen([sys.executable, "-c", code, *map(str, [*args, "--round", "3", "--resume", *trailing])],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running_trials(out) == [5], "trial r2i1 to be running (and blocked)")
        # trials.csv is rewritten after each trial: round 0, round 1 and the finished half of round 2
        # (the pool starts r2i1 before it journals r2i0, hence the wait).
        wait_for(lambda: len(csv_rows(out / "trials.csv")) == 5, "trial r2i0 in trials.csv")
        rows = csv_rows(out / "trials.csv")
        assert [(r["round"], r["trial"]) for r in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1"),
                                                           ("2", "0")]
        assert all(r["status"] == "OK" and float(r["score"]) < 1.01 for r in rows)
        # search.png is redrawn after round 1 (in a background thread: wait for it, don't time it).
        wait_for(lambda: (out / "search.png").read_bytes() != png_after_round0, "search.png to be redrawn")
        # The VisualDL log holds rounds 0 and 1 exactly once, though round 0 came from the first run.
        scores = {(int(r["round"]), int(r["trial"])): round(float(r["score"]), 5) for r in rows}
        best = vdl_scalars(out / "visualization", "hyperparameter_tuning/best_eval_value")
        best_by_round1 = max(v for (k, _), v in scores.items() if k <= 1)
        assert best == [(1, max(scores[0, 0], scores[0, 1])), (2, best_by_round1)]
        pop0 = vdl_scalars(out / "visualization" / "pop_0", "population_transformation/eval_value")
        assert pop0 == [(1, scores[0, 0]), (2, scores[1, 0])]
    finally:
        # 3. kill -9 while blocked; the orphaned trial is killed by the next --resume (or, if an
        # assertion above failed, released by the gate).
        os.kill(tuner.pid, signal.SIGKILL)
        tuner.communicate(timeout=60)
        gate.write_text("open")

    last = run_cli([*args, "--round", "3", "--resume", *trailing], tmp_path)
    assert last.returncode == 0, last.stderr
    rows = csv_rows(out / "trials.csv")
    assert len(rows) == 6
    scores = [round(float(r["score"]), 5) for r in rows]
    best = vdl_scalars(out / "visualization", "hyperparameter_tuning/best_eval_value")
    assert [s for s, _ in best] == [1, 2, 3] and best[-1][1] == max(scores)
    for i in range(2):
        steps = [s for s, _ in vdl_scalars(out / "visualization" / f"pop_{i}", "population_transformation/x")]
        assert steps == [1, 2, 3]
