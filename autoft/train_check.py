"""``train.py --check``: everything a run would need, checked in seconds without training.

Reads the data files (train and dev, labels), finds the model (config, weights and vocab
present, vocab size equal to the config's, labels of a warm start equal to the task's; the
weights are not loaded), checks --max_seq_len against the model's positions and the device as a
run would pick it. The tuner runs it once before the first trial. Problems are the run's own
one-line AutoftErrors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from autoft.errors import AutoftError
from autoft.train_config import DEFAULT_MODEL, DEMO_MODEL, TrainConfig, check_seq_len
from autoft.weights import detect_format, read_json
from autoft.weights.files import read_vocab_file


def _model_summary(cfg: TrainConfig, task) -> str:
    """Check the model's files; one phrase describing the model."""
    from autoft import checkpoint

    if cfg.model_path:
        d = Path(cfg.model_path).expanduser()
        if not d.is_dir() or not checkpoint.is_autoft_dir(d):
            raise AutoftError(f"--model_path {d}: expected a classifier directory saved by autoft "
                              "(config.json, model.safetensors, vocab.txt, labels.json)")
        labels = read_json(d / checkpoint.LABELS, "the classifier's label strings (a JSON list)")
        from autoft.finetune import check_labels

        check_labels(labels if isinstance(labels, list) else [], task.labels, d, task.name)
        return _autoft_model(d, cfg, f"warm start {d}")
    if cfg.dataset == "demo" and cfg.model is None and cfg.model_dir is None:
        vocab = Path(task.data_dir) / "vocab.txt"
        n = read_vocab_file(vocab).size
        check_seq_len(cfg.max_seq_len, DEMO_MODEL["max_position_embeddings"], "the demo model")
        return f"demo model from scratch ({n} tokens in {vocab})"
    d = checkpoint.resolve_model_dir(cfg.model or DEFAULT_MODEL, cfg.model_dir)
    if checkpoint.is_autoft_dir(d):
        return _autoft_model(d, cfg, f"pretrained {d}")
    fmt = detect_format(d)
    if fmt is None:
        found = ", ".join(sorted(p.name for p in d.iterdir())[:12]) or "nothing"
        raise AutoftError(f"{d}: not a model directory autoft knows (found: {found}); expected one of: "
                          f"{checkpoint.LAYOUTS}")
    positions = _foreign_positions(d)
    if positions is not None:
        check_seq_len(cfg.max_seq_len, positions, f"the model in {d}")
    return f"pretrained {d} ({fmt} format; its weights are checked when a trial loads them)"


def _autoft_model(d: Path, cfg: TrainConfig, what: str) -> str:
    from autoft import checkpoint

    config = checkpoint.read_config(d / checkpoint.CONFIG)
    if not (d / checkpoint.WEIGHTS).is_file():
        raise AutoftError(f"{d / checkpoint.WEIGHTS}: file not found (expected the model weights)")
    n = read_vocab_file(d / checkpoint.VOCAB).size
    if n != config.vocab_size:
        raise AutoftError(f"{d / checkpoint.VOCAB}: vocabulary has {n} tokens but {d / checkpoint.CONFIG} says "
                          f"vocab_size {config.vocab_size}; expected the vocab.txt that belongs to these weights")
    check_seq_len(cfg.max_seq_len, config.max_position_embeddings, f"the model in {d}")
    return f"{what} ({config.num_hidden_layers} layers, hidden {config.hidden_size})"


def _foreign_positions(d: Path):
    """max_position_embeddings from a foreign config.json, when it has one."""
    for name in ("config.json", "model_config.json"):
        try:
            raw = json.loads((d / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = raw.get("max_position_embeddings") if isinstance(raw, dict) else None
        if isinstance(value, int):
            return value
    return None


def check(cfg: TrainConfig) -> str:
    """Check what a run of ``cfg`` needs; returns the summary printed after ``check OK:``."""
    from autoft import runtime
    from autoft.data import load_task
    from autoft.finetune import pick_device

    paddle = runtime.import_paddle()
    device = pick_device(paddle, cfg.use_gpu, cfg.amp)
    task = load_task(cfg.dataset, cfg.data_dir)
    n_train = len(task.read("train"))  # train first: an empty train file is named as such
    n_dev = len(task.read("dev"))
    if not task.has_labels("dev"):
        raise AutoftError(f"{task.data_dir}: the dev split has no labels; train.py needs them to pick the best model")
    model = _model_summary(cfg, task)
    if cfg.max_train_examples:
        n_train = min(n_train, cfg.max_train_examples)
    steps = math.ceil(math.ceil(n_train / cfg.batch_size) / cfg.grad_accum)
    return (f"{task.name}: {n_train} train / {n_dev} dev examples, {len(task.labels)} labels; {model}; "
            f"device {device}; {cfg.epochs} epochs x {steps} steps")
