"""train.py's flags (ranges, help) and its check mode, the real CLI in subprocesses where it is one."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from autoft import finetune
from autoft.errors import AutoftError
from tests.tiny_world import write_tiny_model, write_vocab

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("flag, value, expected", [
    ("--blocks", "-3", "expected >= 0"),
    ("--factor", "0", "expected > 0"),
    ("--factor", "nan", "expected > 0"),
    ("--learning_rate", "0", "expected > 0"),
    ("--learning_rate", "inf", "expected > 0"),
    ("--epochs", "0", "expected >= 1"),
    ("--batch_size", "0", "expected >= 1"),
    ("--eval_batch_size", "0", "expected >= 1"),
    ("--grad_accum", "0", "expected >= 1"),
    ("--max_seq_len", "2", "expected >= 3"),
    ("--seed", "-1", "expected 0 <= value <= 4294967295"),
    ("--warmup", "1.5", "expected 0 <= value <= 1"),
    ("--start_point", "-0.1", "expected 0 <= value <= 1"),
    ("--cut_fraction", "1", "expected 0 <= value < 1"),
    ("--ratio", "0.5", "expected >= 1"),
    ("--frz_blocks", "-1", "expected >= 0"),
    ("--weight_decay", "-0.01", "expected >= 0"),
    ("--clip", "-1", "expected >= 0"),
    ("--eval_interval", "-5", "expected >= 0"),
    ("--max_train_examples", "-1", "expected >= 0"),
    ("--log_interval", "0", "expected >= 1"),
    ("--save_interval", "-1", "expected >= 0"),
])
def test_every_numeric_flag_names_flag_value_and_range(flag, value, expected):
    with pytest.raises(AutoftError) as exc:
        finetune.parse_args(["--dataset", "tnews", flag, value])
    msg = str(exc.value)
    assert msg.startswith(f"{flag}: {expected}, found "), msg
    assert msg.split("found ", 1)[1] in (value, str(float(value))), msg


def test_demo_max_seq_len_is_bounded_by_the_demo_model():
    with pytest.raises(AutoftError, match=r"--max_seq_len 100000: expected 3 \.\. 512; the demo model has only 512"):
        finetune.parse_args(["--dataset", "demo", "--max_seq_len", "100000"])
    assert finetune.parse_args(["--dataset", "demo", "--max_seq_len", "512"]).max_seq_len == 512


def test_every_flag_has_a_help_line_and_shows_its_default():
    parser = finetune.build_parser()
    text = " ".join(parser.format_help().split())  # unwrapped
    for action in parser._actions:
        if action.help is None or action.help == "==SUPPRESS==":
            pytest.fail(f"{action.option_strings} has no help")
        if action.default not in (None, False) and action.dest not in ("help", "debug"):
            assert f"(default: {action.default})" in text, action.dest
    for words in ("--debug", "default: per dataset", "default: ckpt_<dataset>", "(default: 16)",
                  "(default: 1.1)", "log (and check the loss for divergence) every N steps"):
        assert words in text, words


# ---------------------------------------------------------------- check mode (subprocess)

POS, NEG = "好棒赞美", "差坏烂糟"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("check")
    rng = random.Random(0)
    data = base / "data"
    data.mkdir()
    for split, n in (("train", 20), ("dev", 6), ("test", 4)):
        lines = ["label\ttext_a"] + [f"{lab}\t{''.join(rng.choice(POS if lab == 'pos' else NEG) for _ in range(5))}"
                                     for lab in ("pos", "neg") * (n // 2)]
        (data / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab = write_vocab(base / "vocab.txt", POS + NEG)
    write_tiny_model(base / "tiny", vocab, hidden_size=8, num_hidden_layers=1, intermediate_size=16)
    flags = ["--dataset", "custom", "--data_dir", str(data), "--model_dir", str(base / "tiny"), "--max_seq_len", "16",
             "--batch_size", "4"]
    return dict(base=base, data=data, flags=flags)


def _check(*args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    environ.update(env)
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "--check", *map(str, args)], cwd=ROOT,
                          env=environ, capture_output=True, text=True, timeout=300)


def _cpu_paddle() -> bool:
    from autoft.runtime import import_paddle

    return not import_paddle().is_compiled_with_cuda()


def test_check_mode_reads_everything_and_trains_nothing(world, tmp_path):
    saved = tmp_path / "model-0"
    proc = _check(*world["flags"], "--saved_params_dir", saved)
    assert proc.returncode == 0, proc.stderr[-2000:]
    estimate, line = proc.stdout.strip().splitlines()
    assert line.startswith("check OK: custom: 20 train / 6 dev examples, 2 labels; pretrained ")
    assert "1 layers, hidden 8" in line and "device cpu" in line and "3 epochs x 5 steps" in line
    # The tuner's GPU memory check reads this line.
    from autoft.tuner.gpu_memory import estimate_from_output

    assert estimate_from_output(proc.stdout) > 0 and estimate.startswith("estimated GPU peak per trial (bytes): ")
    assert not saved.exists() and not Path(str(saved) + ".resume").exists()
    assert "report" not in proc.stderr


@pytest.mark.parametrize("change, message", [
    (["--max_seq_len", "64"], "--max_seq_len 64: expected 3 .. 32"),
    (["--model_dir", "/nonexistent/model"], "/nonexistent/model"),
    (["--data_dir", "/nonexistent/data"], "/nonexistent/data"),
    (["--blocks", "-3"], "--blocks: expected >= 0, found -3"),
])
def test_check_mode_failures_are_one_line_exit_2(world, change, message):
    proc = _check(*world["flags"], *change)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr, proc.stderr


def test_check_mode_names_an_empty_train_file(world, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("label\ttext_a\n", encoding="utf-8")
    for split in ("dev", "test"):
        (data / f"{split}.tsv").write_text((world["data"] / f"{split}.tsv").read_text(encoding="utf-8"),
                                           encoding="utf-8")
    proc = _check(*world["flags"], "--data_dir", data)
    assert proc.returncode == 2 and "train" in proc.stderr.splitlines()[-1], proc.stderr


def test_warm_start_labels_are_checked(world, tmp_path):
    import json
    import shutil

    model = tmp_path / "clf"
    shutil.copytree(world["base"] / "tiny", model)
    (model / "labels.json").write_text(json.dumps(["a", "b"]), encoding="utf-8")
    proc = _check(*world["flags"], "--model_path", model)
    assert proc.returncode == 2 and "['a', 'b'] do not match" in proc.stderr


@pytest.mark.skipif(not _cpu_paddle(), reason="needs a CPU-only Paddle")
def test_a_cpu_paddle_in_a_gpu_slot_stops_train_py(world):
    proc = _check(*world["flags"], CUDA_VISIBLE_DEVICES="0")
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()[-1]
    assert "CUDA_VISIBLE_DEVICES=0 names a GPU" in err and "paddlepaddle-gpu==2.6.2" in err and "--use_gpu False" in err
    # On purpose, and the tuner's CPU slots (CUDA_VISIBLE_DEVICES=""): CPU.
    assert _check(*world["flags"], "--use_gpu", "False", CUDA_VISIBLE_DEVICES="0").returncode == 0
    ok = _check(*world["flags"], CUDA_VISIBLE_DEVICES="")
    assert ok.returncode == 0 and "device cpu" in ok.stdout


def test_check_mode_reads_a_hugging_face_config_without_loading_weights(world, tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    hf = tmp_path / "hf-model"
    config = transformers.BertConfig(vocab_size=5 + len(POS + NEG), hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=16, max_position_embeddings=24)
    transformers.BertModel(config).save_pretrained(hf)
    (hf / "vocab.txt").write_text((world["base"] / "vocab.txt").read_text(encoding="utf-8"), encoding="utf-8")
    flags = [*world["flags"], "--model_dir", hf]
    ok = _check(*flags)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"pretrained {hf} (hf format, 1 layers, hidden 8)" in ok.stdout
    bad = _check(*flags, "--max_seq_len", 30)
    assert bad.returncode == 2 and "--max_seq_len 30: expected 3 .. 24" in bad.stderr
