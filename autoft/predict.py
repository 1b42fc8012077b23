"""Predict a task's test (or dev) split with a saved classifier: the engine behind predict.py.

``--checkpoint_dir DIR`` may be a tuner output dir or a train.py checkpoint dir (both hold
``best_model/``) or a model dir itself. Test predictions become the CLUE-style submission
file(s) plus the legacy ``<dataset>_predict.txt`` of the original predict.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from autoft.errors import AutoftError
from autoft.finetune import _bool, check_labels, pick_device

log = logging.getLogger("autoft.predict")


def find_model_dir(checkpoint_dir) -> Path:
    """The classifier dir inside ``checkpoint_dir``: ``DIR/best_model`` if it holds a model,
    else ``DIR`` itself. Raises AutoftError naming what was looked for."""
    d = Path(checkpoint_dir)
    if not d.is_dir():
        raise AutoftError(f"--checkpoint_dir {d}: directory not found (expected a tuner output dir, "
                          "a train.py checkpoint dir or a saved model dir)")
    for cand in (d / "best_model", d):
        if (cand / "labels.json").is_file() and (cand / "config.json").is_file():
            return cand
    raise AutoftError(f"--checkpoint_dir {d}: no classifier found (expected {d}/best_model/ or {d} to hold "
                      "config.json, model.safetensors and labels.json)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="predict.py", description="Predict a task's test split with a saved "
                                "classifier and write the submission files.")
    a = p.add_argument
    a("--dataset", type=str, required=True, help="tnews | lcqmc | xnli | inews | custom | demo")
    a("--checkpoint_dir", type=str, required=True, help="tuner output dir, train.py checkpoint dir or model dir")
    a("--data_dir", type=str, default=None)
    a("--split", choices=["test", "dev"], default="test", help="dev: print accuracy, write nothing")
    a("--output_dir", type=str, default=None, help="where submission files go (default: --checkpoint_dir)")
    a("--batch_size", type=int, default=64)
    a("--max_seq_len", type=int, default=None, help="default: the value the model was trained with")
    a("--use_gpu", type=_bool, default=None, help="True/False (default: GPU when Paddle has one)")
    a("--score", action="store_true", help="also print test accuracy against kept-aside test labels")
    return p


def predict_ids(paddle, model, features, batch_size: int) -> np.ndarray:
    """Predicted label ids for every example, in the features' order."""
    from autoft.data import features as feats

    model.eval()
    indices, preds = [], []
    with paddle.no_grad():
        # Length-bucketed for speed; each batch's "index" puts predictions back in file order.
        for batch in feats.batches(features, batch_size, shuffle=False, seed=0, bucket=True):
            logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
            indices.append(batch["index"])
            preds.append(logits.argmax(axis=-1).numpy().reshape(-1))
    if not indices:
        return np.zeros(0, dtype=np.int64)
    return feats.restore_order(indices, preds)


def run(args: argparse.Namespace) -> dict:
    """Predict per ``args``; returns {"model_dir", "predictions", "accuracy", "files"}."""
    from autoft import runtime
    paddle = runtime.import_paddle()
    from autoft import checkpoint
    from autoft.data import features as feats
    from autoft.data import load_task, submission
    from autoft.tokenizer import BertTokenizer

    task = load_task(args.dataset, args.data_dir)
    model_dir = find_model_dir(args.checkpoint_dir)
    pick_device(paddle, args.use_gpu, "none")
    model = checkpoint.load_classifier(model_dir)
    check_labels(model.labels, task.labels, model_dir, task.name)
    tokenizer = BertTokenizer.from_dir(model_dir)
    max_seq_len = args.max_seq_len or _trained_seq_len(model_dir) or 128

    examples = task.read(args.split)
    features = feats.encode_split(task, args.split, tokenizer, max_seq_len, cache=True)
    ids = predict_ids(paddle, model, features, args.batch_size)
    labels = [model.labels[i] for i in ids]
    result = {"model_dir": str(model_dir), "predictions": labels, "accuracy": None, "files": []}
    log.info("model %s, %d %s examples, max_seq_len %d", model_dir, len(labels), args.split, max_seq_len)

    for ex, lab in list(zip(examples, labels))[:3]:  # as the original predict.py did
        text = ex.text_a if not ex.text_b else f"{ex.text_a}\t{ex.text_b}"
        print(f"{text}\tpredict={lab}")

    if args.split == "dev":
        gold = [ex.label for ex in examples]
        result["accuracy"] = _accuracy(labels, gold)
        print(f"dev accuracy: {result['accuracy']:.4f} ({len(gold)} examples)")
        return result

    out_dir = Path(args.output_dir or args.checkpoint_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = list(submission.write_submission(task, list(features.guids), labels, out_dir))
    files.append(submission.write_legacy(task, labels, out_dir))
    result["files"] = [str(f) for f in files]
    for f in files:
        print(f"wrote {f}")
    if args.score:
        gold = task.test_labels() if hasattr(task, "test_labels") else None
        if gold is None and task.has_labels("test"):
            gold = [ex.label for ex in examples]
        if gold is None:
            raise AutoftError(f"--score: the {task.name} test split has no labels to score against "
                              f"(in {task.data_dir})")
        if len(gold) != len(labels):
            raise AutoftError(f"--score: {len(gold)} test labels for {len(labels)} test examples in {task.data_dir}")
        result["accuracy"] = _accuracy(labels, gold)
        print(f"test accuracy: {result['accuracy']:.4f} ({len(gold)} examples)")
    return result


def _accuracy(pred: List[str], gold: List[str]) -> float:
    return sum(p == g for p, g in zip(pred, gold)) / max(len(gold), 1)


def _trained_seq_len(model_dir: Path) -> Optional[int]:
    try:
        state = json.loads((model_dir / "train_state.json").read_text(encoding="utf-8"))
        return int(state["hparams"]["max_seq_len"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """predict.py entry point."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(args_in)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise AutoftError(f"predict.py: bad flags {' '.join(args_in)} (see predict.py --help)") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    run(args)
    return 0
