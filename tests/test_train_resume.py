"""Resumable runs: the real train.py killed with SIGKILL mid-epoch and rerun ends exactly where an
uninterrupted run ends (tiny random model with dropout, CPU, same seed)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_finetune import scalar_steps
from tests.tiny_world import write_custom_task, write_tiny_model, write_vocab

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    data = write_custom_task(base / "data", random.Random(0), 400, 40, 10)
    # Dropout stays on (BertConfig's 0.1): the dropout RNG must be restored too.
    model_dir = write_tiny_model(base / "tiny-model", write_vocab(base / "vocab.txt"), seed=0)
    # 200 steps per epoch, 3 epochs: a resume point every 7 steps, evaluations every 50.
    flags = ["--dataset", "custom", "--data_dir", data, "--model_dir", model_dir, "--batch_size", 2,
             "--max_seq_len", 16, "--seed", 5, "--epochs", 3, "--learning_rate", 3e-3, "--blocks", 2,
             "--factor", 1.5, "--save_interval", 7, "--eval_interval", 50, "--log_interval", 50]
    return dict(base=base, flags=[str(f) for f in flags])


def _cmd(world, *extra):
    return [sys.executable, str(ROOT / "train.py"), *world["flags"], *map(str, extra)]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PaddleHub_AutoDL_Trial_ID"}
    env.update(extra)
    return env


def _run(world, *extra, **env):
    proc = subprocess.run(_cmd(world, *extra), cwd=ROOT, env=_env(**env), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _kill_after_resume_point(world, state_file: Path, *extra, min_step=20, **env):
    """Start train.py, SIGKILL it as soon as its resume state is at a mid-epoch step >= min_step."""
    proc = subprocess.Popen(_cmd(world, *extra), cwd=ROOT, env=_env(**env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                step = json.loads(state_file.read_text(encoding="utf-8"))["position"]["step"]
            except (OSError, ValueError, KeyError):
                step = 0
            if step >= min_step and step % 200:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, f"not killed mid-run (rc {proc.returncode}): " + proc.stderr.read()[-2000:]
    return step


def _resumed_step(stderr: str) -> int:
    line = next(ln for ln in stderr.splitlines() if "resumed from step" in ln)
    step, total = line.split("resumed from step ")[1].split(" (")[0].split(" of ")
    assert int(total) == 600
    return int(step)


def test_killed_run_resumes_to_the_same_weights(world):
    ref_dir, run_dir = world["base"] / "ref", world["base"] / "killed"
    ref = _run(world, "--checkpoint_dir", ref_dir)
    assert "resumed" not in ref.stderr
    assert not (ref_dir / "resume").exists()  # a finished run leaves no resume state

    killed_at = _kill_after_resume_point(world, run_dir / "resume" / "state.json", "--checkpoint_dir", run_dir)
    # The latest state, and at most the previous arrays file (a kill before its deletion).
    saved = sorted(p.name for p in (run_dir / "resume").iterdir() if not p.name.startswith("."))
    names = json.loads((run_dir / "resume" / "state.json").read_text(encoding="utf-8"))["arrays"]
    assert "state.json" in saved and names in saved and len(saved) <= 3, saved
    rerun = _run(world, "--checkpoint_dir", run_dir)
    resumed_at = _resumed_step(rerun.stderr)
    assert resumed_at >= killed_at and resumed_at % 200, (killed_at, resumed_at)
    assert not (run_dir / "resume").exists()

    # Bit for bit: the best model's file, and every evaluation's dev loss (a float64 sum over the
    # dev set: any difference in any weight shows), including the last one.
    assert (run_dir / "best_model" / "model.safetensors").read_bytes() == \
        (ref_dir / "best_model" / "model.safetensors").read_bytes()
    a = json.loads((ref_dir / "train_state.json").read_text(encoding="utf-8"))
    b = json.loads((run_dir / "train_state.json").read_text(encoding="utf-8"))
    assert [h["step"] for h in a["history"]][-1] == 600
    assert a["history"] == b["history"] and a["first_loss"] == b["first_loss"] and a["score"] == b["score"]

    # VisualDL: one point per logged step, as the uninterrupted run (the steps trained again after
    # the resume point are not written twice).
    ref_steps = scalar_steps(ref_dir / "visualdl")
    assert ref_steps["train/loss"][-1] == 600 and ref_steps["dev/accuracy"]
    assert {tag: sorted(steps) for tag, steps in scalar_steps(run_dir / "visualdl").items()} == ref_steps

    # A finished run is not resumed: a rerun starts over, and its curves replace the old ones.
    again = _run(world, "--checkpoint_dir", run_dir, "--epochs", 3)
    assert "resumed" not in again.stderr
    assert scalar_steps(run_dir / "visualdl") == ref_steps


def test_trial_keeps_its_resume_state_beside_the_model_dir(world, tmp_path):
    model = tmp_path / "round0" / "model-1"
    reports = tmp_path / "intermediate.txt"
    env = {"PaddleHub_AutoDL_Trial_ID": "r0i1", "AUTOFT_RESULT_FILE": str(tmp_path / "result.txt"),
           "AUTOFT_INTERMEDIATE_FILE": str(reports)}
    resume_dir = tmp_path / "round0" / "model-1.resume"
    _kill_after_resume_point(world, resume_dir / "state.json", "--saved_params_dir", model, min_step=60, **env)
    # The model dir holds the best model only (written at the step-50 evaluation), never resume files.
    assert sorted(p.name for p in model.iterdir()) == sorted(
        ["config.json", "model.safetensors", "vocab.txt", "labels.json", "train_state.json", "tokenizer_config.json"])
    assert (resume_dir / "state.json").is_file()
    assert not (Path(ROOT) / "ckpt_custom").exists()

    rerun = _run(world, "--saved_params_dir", model, **env)
    assert _resumed_step(rerun.stderr) >= 60
    assert not resume_dir.exists()
    steps = [int(line.split("\t")[1]) for line in reports.read_text(encoding="utf-8").splitlines()]
    # Every evaluation reported (step 50 twice at most: before the kill and never again after it).
    assert sorted(set(steps)) == [50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600]
    assert (tmp_path / "result.txt").read_text(encoding="utf-8").startswith("r0i1\t")


def test_no_resume_starts_over_and_other_flags_are_refused(world, tmp_path):
    ckpt = tmp_path / "ckpt"
    _kill_after_resume_point(world, ckpt / "resume" / "state.json", "--checkpoint_dir", ckpt, min_step=7)
    proc = subprocess.run(_cmd(world, "--checkpoint_dir", ckpt, "--learning_rate", 1e-3), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--learning_rate 0.001 (saved: 0.003)" in proc.stderr and "--no_resume" in proc.stderr
    fresh = _run(world, "--checkpoint_dir", ckpt, "--learning_rate", 1e-3, "--no_resume", "--epochs", 1)
    assert "resumed" not in fresh.stderr and not (ckpt / "resume").exists()


def test_a_resume_state_whose_best_model_is_gone_starts_over(world, tmp_path):
    import shutil

    ckpt = tmp_path / "ckpt"
    _kill_after_resume_point(world, ckpt / "resume" / "state.json", "--checkpoint_dir", ckpt, min_step=60)
    shutil.rmtree(ckpt / "best_model")  # e.g. a tuner cleaning up an unfinished trial
    proc = _run(world, "--checkpoint_dir", ckpt)
    assert "best model" in proc.stderr and "missing; starting over" in proc.stderr
    assert "resumed from" not in proc.stderr
    run = json.loads((ckpt / "train_state.json").read_text(encoding="utf-8"))
    assert run["history"][0]["step"] == 50 and (ckpt / "best_model" / "model.safetensors").is_file()
