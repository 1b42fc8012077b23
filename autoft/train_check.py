"""``train.py --check``: everything a run would need, checked in seconds without training.

Reads the data files (train and dev, labels), finds the model (config, weights and vocab
present, vocab size equal to the config's, labels of a warm start equal to the task's; the
weights are not loaded), checks --max_seq_len against the model's positions and the device as a
run would pick it, and prints one trial's estimated GPU peak (autoft.memory) for the tuner's
memory check. The tuner runs it once before the first trial. Problems are the run's own
one-line AutoftErrors.
"""

from __future__ import annotations

import math
from pathlib import Path

from autoft.errors import AutoftError
from autoft.train_config import DEFAULT_MODEL, DEMO_MODEL, TrainConfig, check_seq_len


def _model_summary(cfg: TrainConfig, task) -> tuple:
    """Check the model's files; (one phrase describing the model, its BertConfig)."""
    from autoft import checkpoint
    from autoft.weights import FOREIGN, is_autoft_dir
    from autoft.weights.files import check_vocab_size, read_json, read_vocab_file

    if cfg.model_path:
        d = Path(cfg.model_path).expanduser()
        if not d.is_dir() or not is_autoft_dir(d):
            raise AutoftError(f"--model_path {d}: expected a classifier directory saved by autoft "
                              "(config.json, model.safetensors, vocab.txt, labels.json)")
        labels = read_json(d / checkpoint.LABELS, "the classifier's label strings in id order (a JSON list)", list)
        from autoft.finetune import check_labels

        check_labels(labels, task.labels, d, task.name)
        return _autoft_model(d, cfg, f"warm start {d}")
    if cfg.uses_demo_model():
        from autoft.model import BertConfig

        vocab = read_vocab_file(Path(task.data_dir) / "vocab.txt")
        check_seq_len(cfg.max_seq_len, DEMO_MODEL["max_position_embeddings"], "the demo model")
        return (f"demo model from scratch ({vocab.size} tokens in {vocab.path})",
                BertConfig(vocab_size=vocab.size, **DEMO_MODEL))
    d = checkpoint.resolve_model_dir(cfg.model or DEFAULT_MODEL, cfg.model_dir)
    fmt = checkpoint.model_format(d)
    if fmt == "autoft":
        return _autoft_model(d, cfg, f"pretrained {d}")
    source = FOREIGN[fmt].locate(d)  # config and file names; the weights are read when a trial loads them
    check_vocab_size(source.vocab, source.config.vocab_size, source.config_source, " (vocab_size)")
    check_seq_len(cfg.max_seq_len, source.config.max_position_embeddings, f"the model in {d}")
    return f"pretrained {d} ({fmt} format, {_shape(source.config)})", source.config


def _shape(config) -> str:
    return f"{config.num_hidden_layers} layers, hidden {config.hidden_size}"


def _autoft_model(d: Path, cfg: TrainConfig, what: str) -> tuple:
    from autoft import checkpoint
    from autoft.weights.files import check_vocab_size

    config = checkpoint.read_config(d / checkpoint.CONFIG)
    if not (d / checkpoint.WEIGHTS).is_file():
        raise AutoftError(f"{d / checkpoint.WEIGHTS}: file not found (expected the model weights)")
    check_vocab_size(d / checkpoint.VOCAB, config.vocab_size, str(d / checkpoint.CONFIG), " (vocab_size)")
    check_seq_len(cfg.max_seq_len, config.max_position_embeddings, f"the model in {d}")
    return f"{what} ({_shape(config)})", config


def check(cfg: TrainConfig) -> list:
    """Check what a run of ``cfg`` needs. Returns the lines to print: the estimated GPU peak of
    one trial (autoft.memory; the tuner reads it), then ``check OK: <summary>``."""
    from autoft import memory, runtime
    from autoft.data import load_task
    from autoft.finetune import pick_device, require_dev_labels
    from autoft.tuner.gpu_memory import estimate_line

    paddle = runtime.import_paddle()
    device = pick_device(paddle, cfg.use_gpu, cfg.amp)
    task = load_task(cfg.dataset, cfg.data_dir)
    n_train = len(task.read("train"))  # train first: an empty train file is named as such
    n_dev = len(task.read("dev"))
    require_dev_labels(task)
    model, config = _model_summary(cfg, task)
    if cfg.max_train_examples:
        n_train = min(n_train, cfg.max_train_examples)
    steps = math.ceil(math.ceil(n_train / cfg.batch_size) / cfg.grad_accum)
    peak = memory.estimate_peak_bytes(config, cfg.batch_size, cfg.max_seq_len, cfg.amp, len(task.labels))
    return [estimate_line(peak),
            f"check OK: {task.name}: {n_train} train / {n_dev} dev examples, {len(task.labels)} labels; {model}; "
            f"device {device}; {cfg.epochs} epochs x {steps} steps; estimated GPU peak {memory.format_gib(peak)}"]
