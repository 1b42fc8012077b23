"""The tuner with autoft's real train.py (tiny random model, CPU): a search killed with -9 while a
trial trains, then --resume, continues that trial from train.py's resume state (issue 16.5): its
log keeps the first attempt's lines and shows the step it resumed at, and the state dir is gone
once the trial is final. The trial's process group is frozen (SIGSTOP) when the tuner is killed,
so the orphan cannot finish before the resume kills it, whatever the machine's speed."""

import json
import os
import signal
import subprocess

import pytest

from tests.test_train_resume import world  # noqa: F401 - the tiny data set and model (module fixture)
from tests.test_tuner_cli import ROOT, run_cli
from tests.test_tuner_search import read_journal, start_tuner, wait_for

pytestmark = pytest.mark.slow

SPACE = """param_list:
- {name: learning_rate, init_value: 0.003, type: float, greater_than: 0.001, lower_than: 0.005}
- {name: factor, init_value: 1.5, type: float, greater_than: 1.1, lower_than: 2.0}
"""
SEARCHED = {"--learning_rate", "--factor"}


def trailing(world):  # noqa: F811 - the fixture's value
    """train.py's flags of the fixture as the tuner's trailing `key value` pairs, minus the searched ones."""
    flags = world["flags"]
    pairs = [(flags[i], flags[i + 1]) for i in range(0, len(flags), 2) if flags[i] not in SEARCHED]
    return [tok for k, v in pairs for tok in (k.lstrip("-"), v)]


def test_a_killed_search_continues_its_training_trial_from_the_resume_state(world, tmp_path):  # noqa: F811
    (tmp_path / "hp.yaml").write_text(SPACE)
    out = tmp_path / "out"
    args = [ROOT / "train.py", "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "1", "--popsize", "1",
            "--round", "1", "--seed", "3", "--evaluator", "fulltrail", "--tuning_strategy", "random"]
    state = out / "round0" / "model-0.resume" / "state.json"

    def mid_epoch():
        try:
            step = json.loads(state.read_text(encoding="utf-8"))["position"]["step"]
        except (OSError, ValueError, KeyError):
            return False
        return step >= 20 and step % 200 != 0

    tuner = start_tuner([*args, *trailing(world)], tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(mid_epoch, "the trial's resume state at a mid-epoch step", timeout=600)
        trial = json.loads((out / ".running.json").read_text())[0]["pid"]
        os.killpg(trial, signal.SIGSTOP)  # frozen: it cannot move past its resume point any more
        tuner.kill()
        tuner.wait()
        frozen_at = json.loads(state.read_text(encoding="utf-8"))["position"]["step"]
    finally:
        if tuner.poll() is None:
            tuner.kill()
    resumed = run_cli([*args, "--resume", *trailing(world)], tmp_path, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "killed 1 trial process(es)" in resumed.stdout
    assert "round 0 trial 0: continuing the interrupted trial" in resumed.stdout
    first, _, second = (out / "round0" / "log-0.info").read_text().partition("relaunched by --resume")
    assert "resumed from" not in first and "# autofinetune trial 0 on cpu0" in first
    assert f"resumed from step {frozen_at} of 600" in second
    assert not (out / "round0" / "model-0.resume").exists()
    _, trials = read_journal(out / "journal.jsonl")
    assert [t["status"] for t in trials] == ["OK"]
    assert (out / "best_model" / "model.safetensors").is_file()
