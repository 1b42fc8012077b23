"""End to end: the real train.py and predict.py in subprocesses, on a tiny custom data set and a
tiny random pretrained model written by the test."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_world import write_custom_task, write_split, write_tiny_model, write_vocab

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

def _run(script, *args, timeout=240, env_extra=None):
    env = dict(os.environ)
    env.pop("PaddleHub_AutoDL_Trial_ID", None)
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A custom data set, a tiny random 'pretrained' model, and one real training run."""
    base = tmp_path_factory.mktemp("e2e")
    data = write_custom_task(base / "data", random.Random(0), 96, 32, 20)
    model_dir = write_tiny_model(base / "tiny-model", write_vocab(base / "vocab.txt"), seed=0)

    ckpt, saved = base / "ckpt", base / "saved"
    common = ["--dataset", "custom", "--data_dir", data, "--batch_size", 8, "--max_seq_len", 16, "--seed", 1]
    proc = _run("train.py", *common, "--model_dir", model_dir, "--checkpoint_dir", ckpt,
                "--saved_params_dir", saved, "--epochs", 3, "--learning_rate", 1e-2, "--blocks", 2,
                "--factor", 1.5, "--eval_interval", 5, "--warmup", 0.1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(base=base, data=data, model_dir=model_dir, ckpt=ckpt, saved=saved, common=common, train=proc)


def _state(model_dir: Path) -> dict:
    return json.loads((model_dir / "train_state.json").read_text(encoding="utf-8"))


def test_train_keeps_best_model_copies_it_and_reports(world):
    best = world["ckpt"] / "best_model"
    for name in ("config.json", "model.safetensors", "vocab.txt", "labels.json", "train_state.json"):
        assert (best / name).is_file(), name
        assert (world["saved"] / name).is_file(), name
    state = _state(best)
    assert state == _state(world["saved"])
    assert json.loads((best / "labels.json").read_text(encoding="utf-8")) == ["pos", "neg"]
    # The data is separable by character: the tiny model must learn it.
    assert state["score"] >= 0.8, state
    assert state["hparams"]["blocks"] == 2 and state["hparams"]["learning_rate"] == 1e-2
    # Evaluated every 5 steps and at each epoch end (12 steps per epoch: 96/8).
    run = json.loads((world["ckpt"] / "train_state.json").read_text(encoding="utf-8"))
    assert [h["step"] for h in run["history"]] == [5, 10, 12, 15, 20, 24, 25, 30, 35, 36]
    assert state["score"] == run["score"] == max(h["dev_accuracy"] for h in run["history"])
    assert state["step"] == run["step"] == state["history"][-1]["step"]
    assert f"final result: {state['score']!r}" in world["train"].stderr
    assert (world["ckpt"] / "visualdl").is_dir()


def test_predict_writes_submission_and_scores(world):
    out = world["base"] / "pred"
    proc = _run("predict.py", "--dataset", "custom", "--data_dir", world["data"], "--checkpoint_dir",
                world["ckpt"], "--output_dir", out, "--score")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"predicted 20 custom test examples from {world['data'] / 'test.tsv'}" in proc.stdout
    legacy = out / "custom_predict.txt"
    lines = legacy.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 20 and set(lines) <= {"pos", "neg"}
    gold = [ln.split("\t")[0] for ln in (world["data"] / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    acc = sum(p == g for p, g in zip(lines, gold)) / len(gold)
    assert f"test accuracy: {acc:.4f}" in proc.stdout
    assert any(p.suffix == ".json" for p in out.iterdir())  # the CLUE-style JSON lines file

    dev = _run("predict.py", "--dataset", "custom", "--data_dir", world["data"], "--checkpoint_dir",
               world["saved"], "--split", "dev")
    assert dev.returncode == 0, dev.stderr[-3000:]
    # Same model, same dev set: the accuracy train.py kept.
    assert f"dev accuracy: {_state(world['saved'])['score']:.4f}" in dev.stdout


def test_warm_start_begins_from_saved_weights(world):
    ckpt = world["base"] / "warm"
    results = world["base"] / "results.txt"
    # As a tuner trial (populationbased evaluator: --epochs=1 --model_path DIR), reporting
    # through the trial's result file.
    proc = _run("train.py", "--epochs=1", "--model_path", world["saved"], *world["common"], "--checkpoint_dir",
                ckpt, "--learning_rate=1e-4", "--blocks=16", "--factor=1.1",
                env_extra={"PaddleHub_AutoDL_Trial_ID": "r1i0", "AUTOFT_RESULT_FILE": str(results)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert results.read_text(encoding="utf-8") == f"r1i0\t{_state(ckpt / 'best_model')['score']!r}\n"
    assert "final result:" not in proc.stderr
    scratch = _state(world["saved"])["first_loss"]
    warm = _state(ckpt / "best_model")["first_loss"]
    # Same seed, same first batch: only the starting weights differ.
    assert warm < scratch - 0.1, (warm, scratch)


def test_label_mismatch_is_a_clear_error(world):
    other = world["base"] / "other"
    other.mkdir()
    rng = random.Random(1)
    for split, n in (("train", 12), ("dev", 6), ("test", 6)):
        write_split(other / f"{split}.tsv", rng, n, labels=("a", "b", "c"))
    proc = _run("train.py", "--dataset", "custom", "--data_dir", other, "--model_path", world["saved"],
                "--epochs", 1)
    assert proc.returncode == 2
    assert "labels" in proc.stderr and "['pos', 'neg']" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("predict.py", "--dataset", "custom", "--data_dir", other, "--checkpoint_dir", world["ckpt"])
    # Custom data takes the checkpoint's labels (predicting needs only the test file).
    assert proc.returncode == 2 and "expected a label in {pos, neg} (the labels of " in proc.stderr


def test_missing_model_dir_says_where_to_put_files(world, tmp_path):
    missing = tmp_path / "no-such-model"
    proc = _run("train.py", "--dataset", "custom", "--data_dir", world["data"], "--model_dir", missing,
                "--epochs", 1)
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_ulmfit_options_accumulation_and_clipping_run(world):
    ckpt = world["base"] / "ulmfit"
    proc = _run("train.py", *world["common"], "--model_dir", world["model_dir"], "--checkpoint_dir", ckpt,
                "--epochs", 2, "--learning_rate", 1e-2, "--frz_blocks", 2, "--cut_fraction", 0.1,
                "--dis_mode", "layers", "--blocks", 1, "--factor", 2.0, "--grad_accum", 2, "--clip", 1.0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 2-layer classifier = 6*2 + 5 = 17 levels: epoch 1 trains the top floor(17*1/2) = 8.
    assert "epoch 1: top 8 of 17 levels train" in proc.stderr
    assert "epoch 2: top 17 of 17 levels train" in proc.stderr
    # 12 micro-batches per epoch, 2 per optimizer step -> 6 steps per epoch.
    run = json.loads((ckpt / "train_state.json").read_text(encoding="utf-8"))
    assert [h["step"] for h in run["history"]] == [6, 12]


def test_max_seq_len_beyond_the_model_is_a_clear_error(world):
    proc = _run("train.py", "--dataset", "custom", "--data_dir", world["data"], "--model_dir", world["model_dir"],
                "--max_seq_len", 64)
    assert proc.returncode == 2 and "only 32 positions" in proc.stderr and "Traceback" not in proc.stderr
