"""train.py flag handling and the loop's helpers (autoft/finetune.py, autoft/predict.py)."""

from pathlib import Path

import numpy as np
import pytest

from autoft import finetune
from autoft.errors import AutoftError


def test_dataset_defaults_follow_the_seed():
    for name, (bs, seq, ep) in {"tnews": (16, 128, 3), "lcqmc": (16, 128, 3), "xnli": (32, 128, 2),
                                "inews": (4, 512, 3)}.items():
        a = finetune.parse_args(["--dataset", name.upper()])
        assert (a.dataset, a.batch_size, a.max_seq_len, a.epochs, a.learning_rate) == (name, bs, seq, ep, 5e-5)
    a = finetune.parse_args(["--dataset", "inews", "--batch_size", "8", "--epochs", "1"])
    assert (a.batch_size, a.max_seq_len, a.epochs) == (8, 512, 1)


def test_tuner_command_line_is_accepted():
    # PaddleHub 1.4's trial command: flags first, then the trailing `key value` options.
    argv = ["--epochs=1", "--model_path", "round0/model-1", "--saved_params_dir=round1/model-0",
            "--learning_rate=7.87e-06", "--blocks=16", "--factor=1.117", "dataset", "tnews", "max_train_examples", "100"]
    a = finetune.parse_args(argv)
    assert a.model_path == "round0/model-1" and a.saved_params_dir == "round1/model-0"
    assert (a.dataset, a.epochs, a.blocks, a.learning_rate, a.factor) == ("tnews", 1, 16, 7.87e-06, 1.117)
    assert a.max_train_examples == 100


@pytest.mark.parametrize("argv, flag", [
    (["--learning_rate", "5e-5"], "--dataset"),
    (["--dataset", "demo", "--learning_rate", "-1"], "--learning_rate"),
    (["--dataset", "demo", "--batch_size", "0"], "--batch_size"),
    (["--dataset", "demo", "--nonsense", "1"], "unknown flags"),
    (["--dataset", "demo", "dataset"], "odd number"),
])
def test_bad_flags_are_user_errors(argv, flag):
    with pytest.raises(AutoftError, match=flag):
        finetune.parse_args(argv)


def test_argparse_errors_are_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        finetune.parse_args(["--dataset", "demo", "--blocks", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: argument --blocks: invalid int value: 'x' (see train.py --help)"]


def test_subset_is_fixed_and_keeps_order():
    from autoft.data.features import Features

    ids = [np.arange(i % 5 + 1, dtype=np.int64) for i in range(50)]
    f = Features(ids, [np.zeros_like(x) for x in ids], np.arange(50, dtype=np.int64) % 3, [str(i) for i in range(50)])
    s1, s2 = finetune.subset(f, 10), finetune.subset(f, 10)
    assert s1.guids == s2.guids and len(s1) == 10
    keep = [int(g) for g in s1.guids]
    assert keep == sorted(keep)
    assert list(s1.labels) == [k % 3 for k in keep]
    assert list(s1.lengths) == [k % 5 + 1 for k in keep]
    assert finetune.subset(f, 0) is f and finetune.subset(f, 500) is f


def test_find_model_dir(tmp_path):
    from autoft.predict import find_model_dir

    model = tmp_path / "out" / "best_model"
    model.mkdir(parents=True)
    (model / "labels.json").write_text("[]")
    (model / "config.json").write_text("{}")
    assert find_model_dir(tmp_path / "out") == model
    assert find_model_dir(model) == model
    with pytest.raises(AutoftError, match="no classifier found"):
        find_model_dir(tmp_path)
    with pytest.raises(AutoftError, match="not found"):
        find_model_dir(tmp_path / "nope")


def test_amp_is_ignored_with_a_warning_on_cpu(caplog):
    from autoft.runtime import import_paddle

    paddle = import_paddle()
    if paddle.is_compiled_with_cuda():
        pytest.skip("a CUDA build picks the GPU")
    with caplog.at_level("WARNING", logger="autoft.finetune"):
        assert finetune.pick_device(paddle, None, "fp16") == "cpu"
    assert "--amp=fp16 ignored on CPU" in caplog.text
    with pytest.raises(AutoftError, match="--use_gpu True asks for a GPU"):
        finetune.pick_device(paddle, True, "none")


@pytest.mark.parametrize("visible, refused", [("0", True), ("GPU-5f3a", True), ("", False), ("-1", False),
                                              (None, False)])
def test_a_cpu_paddle_in_a_gpu_slot_is_refused(visible, refused):
    from autoft.runtime import import_paddle

    paddle = import_paddle()
    if paddle.is_compiled_with_cuda():
        pytest.skip("needs a CPU-only Paddle")
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    if refused:
        with pytest.raises(AutoftError) as exc:
            finetune.pick_device(paddle, None, "none", environ=env)
        msg = str(exc.value)
        assert f"CUDA_VISIBLE_DEVICES={visible} names a GPU" in msg and "a CPU-only build" in msg
        assert "paddlepaddle-gpu==2.6.2" in msg and "--use_gpu False" in msg
        assert f"paddlepaddle {paddle.__version__}" in msg
    else:
        assert finetune.pick_device(paddle, None, "none", environ=env) == "cpu"
    # On purpose: always CPU.
    assert finetune.pick_device(paddle, False, "none", environ=env) == "cpu"


def test_train_config_reads_old_and_new_train_state(tmp_path):
    from autoft.train_config import TrainConfig, read_train_state

    old = {"score": 0.8, "epoch": 2, "hparams": {"dataset": "tnews", "learning_rate": 7.87e-06, "blocks": 16,
                                                  "max_seq_len": 128, "debug_flag_of_an_old_version": 1}}
    path = tmp_path / "train_state.json"
    path.write_text(__import__("json").dumps(old), encoding="utf-8")
    cfg, rest = read_train_state(path)
    assert (cfg.dataset, cfg.learning_rate, cfg.blocks, cfg.max_seq_len) == ("tnews", 7.87e-06, 16, 128)
    assert cfg.save_interval == 0 and rest == {"score": 0.8, "epoch": 2}
    assert cfg.to_dict()["debug_flag_of_an_old_version"] == 1  # kept, not lost
    new = finetune.parse_args(["--dataset", "demo", "--seed", "7"])
    assert TrainConfig.from_dict(new.to_dict()) == new


def scalar_steps(logdir):
    """tag -> the steps of its points, in file order, over every VisualDL file in ``logdir``."""
    from visualdl import LogReader

    out = {}
    for path in sorted(Path(logdir).glob("vdlrecords.*.log")):
        reader = LogReader(file_path=str(path))
        for tag in reader.get_tags().get("scalar", []):
            out.setdefault(tag, []).extend(int(r.id) for r in reader.get_data("scalar", tag))
    return out


def test_a_resumed_scalar_log_writes_no_step_twice(tmp_path):
    pytest.importorskip("visualdl")
    from autoft.visualdl import ScalarLog

    first = ScalarLog.open(tmp_path / "vis", fresh=True)
    for step in range(1, 6):
        first.add_many({"train/loss": 1.0 / step, "lr/b0": 0.1}, step)
    first.add("dev/accuracy", 0.5, 4)
    first.close()  # interrupted after step 5; the resume point was step 3
    again = ScalarLog.open(tmp_path / "vis", resumed=True)
    assert again.logged == {"train/loss": 5, "lr/b0": 5, "dev/accuracy": 4}
    for step in range(4, 8):
        again.add_many({"train/loss": 1.0 / step, "lr/b0": 0.1}, step)
    again.add("dev/accuracy", 0.6, 4)  # already there: left out
    again.add("dev/accuracy", 0.7, 8)
    again.close()
    assert scalar_steps(tmp_path / "vis") == {"train/loss": [1, 2, 3, 4, 5, 6, 7], "lr/b0": [1, 2, 3, 4, 5, 6, 7],
                                              "dev/accuracy": [4, 8]}
    over = ScalarLog.open(tmp_path / "vis", fresh=True)  # a run that starts over: the old curves go
    over.add("train/loss", 1.0, 1)
    over.close()
    assert scalar_steps(tmp_path / "vis") == {"train/loss": [1]}


def test_scalar_log_writes_runs_and_children_or_nothing(tmp_path):
    pytest.importorskip("visualdl")
    from autoft.visualdl import ScalarLog

    log = ScalarLog.open(tmp_path / "vis")
    pop = log.child("pop_0")
    log.add_many({"a/x": 1.0, "a/y": 2.0}, step=1)
    pop.add("b/z", 3, step=1)
    log.flush()
    log.close()
    pop.close()
    log.close()  # twice is fine
    assert any(p.is_file() for p in (tmp_path / "vis").iterdir())
    assert any((tmp_path / "vis" / "pop_0").iterdir())
    (tmp_path / "vis" / "stale").write_text("x")
    fresh = ScalarLog.open(tmp_path / "vis", fresh=True)
    assert not (tmp_path / "vis" / "stale").exists() and fresh.enabled
    fresh.close()
    off = ScalarLog.disabled("a tuner trial")
    off.add("t", 1.0, 1)
    assert not off.enabled and not off.child("pop_1").enabled and off.note == "a tuner trial"
