"""predict.py: a saved classifier on a task's test (or dev) split, or on your own text.

``--checkpoint_dir DIR`` may be a tuner output dir or a train.py checkpoint dir (both hold
``best_model/``) or a model dir itself.

- ``--dataset D``: test predictions become the CLUE-style submission file(s) plus the legacy
  ``<dataset>_predict.txt`` of the original predict.py; ``--split dev`` prints accuracy.
- ``--input FILE|-``: one text a line (or ``text_a<TAB>text_b``), or JSON lines with
  ``text_a``/``text_b`` (and an optional ``id``); writes one JSON line per text with the label
  and every label's probability, to stdout or ``--output FILE``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from autoft import atomic
from autoft.classifier import AMP_CHOICES, Classifier, check_batch_size, check_max_seq_len, find_model_dir
from autoft.errors import ArgumentParser, AutoftError, where
from autoft.finetune import _bool

__all__ = ["build_parser", "find_model_dir", "main", "read_texts", "run"]

log = logging.getLogger("autoft.predict")
INPUT_FORMATS = ("auto", "text", "jsonl")
STDIN = "<stdin>"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="predict.py", description="Predict with a saved classifier: a task's test "
                       "split (--dataset, writes the submission files) or your own text (--input).")
    a = p.add_argument
    a("--checkpoint_dir", type=str, required=True,
      help="tuner output dir, train.py checkpoint dir (both hold best_model/) or a model dir")
    a("--dataset", type=str, default=None, help="predict this task's split: tnews | lcqmc | xnli | inews | "
      "custom | demo (unset: give --input)")
    a("--data_dir", type=str, default=None, help="the task's files (default: $AUTOFT_HOME/data/<dataset>)")
    a("--split", choices=["test", "dev"], default="test", help="dev: print accuracy, write nothing")
    a("--output_dir", type=str, default=None, help="where submission files go (default: --checkpoint_dir)")
    a("--score", action="store_true", help="also print test accuracy against kept-aside test labels")
    a("--input", type=str, default=None, help="your own text: a file, or - for stdin; a line is one text or "
      "text_a<TAB>text_b, or a JSON object with text_a (text_b, id optional) (unset: give --dataset)")
    a("--input_format", choices=INPUT_FORMATS, default="auto",
      help="auto: JSON lines for a .jsonl/.json file or a first line starting with {, else text")
    a("--output", type=str, default=None, help="with --input: write the JSON lines here (default: stdout)")
    a("--batch_size", type=int, default=64, help="texts per forward pass (>= 1)")
    a("--max_seq_len", type=int, default=None, help="tokens per example, within the model's positions "
      "(default: the value the model was trained with, else 128)")
    a("--use_gpu", type=_bool, default=None, help="True/False (default: GPU when Paddle has one)")
    a("--amp", choices=AMP_CHOICES, default="none", help="mixed precision for the forward pass (GPU only)")
    return p


# ------------------------------------------------------------------ your own text


@dataclass
class TextInput:
    """Texts read from ``--input``: parallel lists, ``lines`` the 1-based source line of each."""

    name: str
    texts_a: List[str] = field(default_factory=list)
    texts_b: List[Optional[str]] = field(default_factory=list)
    lines: List[int] = field(default_factory=list)
    ids: List[Optional[object]] = field(default_factory=list)


def read_texts(source: str, fmt: str = "auto", data: Optional[bytes] = None) -> TextInput:
    """Read ``--input``: a file path, or ``-`` for stdin (``data``: its bytes, read here if None).

    Blank lines are skipped; anything else malformed is an AutoftError naming file:line.
    """
    from autoft.data.tasks import iter_lines

    path = Path(STDIN if source == "-" else source)
    if source == "-":
        data = sys.stdin.buffer.read() if data is None else data
    elif not path.is_file():
        raise AutoftError(f"--input {path}: file not found (expected texts, one a line, or - for stdin)")
    lines = list(iter_lines(path, Counter(), data))
    if fmt == "auto":
        first = lines[0][1].lstrip() if lines else ""
        fmt = "jsonl" if path.suffix in (".jsonl", ".json") or first.startswith("{") else "text"
    out = TextInput(str(path))
    for number, line in lines:
        text_a, text_b, guid = (_json_texts if fmt == "jsonl" else _tsv_texts)(line, path, number)
        out.texts_a.append(text_a)
        out.texts_b.append(text_b)
        out.lines.append(number)
        out.ids.append(guid)
    if not out.texts_a:
        raise AutoftError(f"--input {path}: expected at least one text, found none")
    return out


def _tsv_texts(line: str, path: Path, number: int):
    fields = line.split("\t")
    if len(fields) > 2:
        raise AutoftError(f"{where(path, number)}: expected one text or text_a TAB text_b, found "
                          f"{len(fields)} TAB-separated fields: {line[:80]!r}")
    texts = [f.strip() for f in fields]
    if not all(texts):
        raise AutoftError(f"{where(path, number)}: expected a non-empty text on each side of the TAB, "
                          f"found {line[:80]!r}")
    return texts[0], (texts[1] if len(texts) == 2 else None), None


def _json_texts(line: str, path: Path, number: int):
    from autoft.data.tasks import _json_object

    obj = _json_object(line, path, number)
    texts = []
    for key in ("text_a", "text_b"):
        value = obj.get(key)
        if value is None and key == "text_b":
            texts.append(None)
        elif not isinstance(value, str) or not value.strip():
            raise AutoftError(f"{where(path, number)}: expected a non-empty \"{key}\" string, found "
                              f"{'no key' if key not in obj else repr(value)} (keys: {', '.join(sorted(obj))})")
        else:
            texts.append(value.strip())
    return texts[0], texts[1], obj.get("id")


def predict_texts(classifier: Classifier, inputs: TextInput, batch_size: int) -> List[dict]:
    """One output record per input text: line (and id), label, probabilities."""
    texts_b = inputs.texts_b if any(b is not None for b in inputs.texts_b) else None
    result = classifier.predict(inputs.texts_a, texts_b, batch_size=batch_size)
    records = []
    for number, guid, record in zip(inputs.lines, inputs.ids, result.records()):
        head = {"line": number} if guid is None else {"line": number, "id": guid}
        probabilities = {c: round(p, 6) for c, p in record["probabilities"].items()}  # float32 digits only
        records.append({**head, "label": record["label"], "probabilities": probabilities})
    return records


def _counts(labels: Sequence[str], classes: Sequence[str]) -> str:
    counts = Counter(labels)
    return ", ".join(f"{c} {counts.get(c, 0)}" for c in classes)


def run_texts(args: argparse.Namespace, classifier: Classifier) -> dict:
    inputs = read_texts(args.input, args.input_format)
    records = predict_texts(classifier, inputs, args.batch_size)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    pairs = sum(b is not None for b in inputs.texts_b)
    print(f"predicted {len(records)} texts from {inputs.name}{f' ({pairs} with text_b)' if pairs else ''} with "
          f"{classifier.model_dir} (max_seq_len {classifier.max_seq_len}): "
          f"{_counts([r['label'] for r in records], classifier.labels)}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return {"model_dir": str(classifier.model_dir), "predictions": [r["label"] for r in records],
            "files": [args.output] if args.output else []}


# ------------------------------------------------------------------ a task's split


def _task_for(args: argparse.Namespace, classifier: Classifier):
    """The task, with the checkpoint's labels checked (custom data: taken from the checkpoint)."""
    from autoft.data import load_task
    from autoft.data.custom import CustomTask
    from autoft.finetune import check_labels

    task = load_task(args.dataset, args.data_dir)
    if isinstance(task, CustomTask):
        task.adopt_labels(classifier.labels, str(classifier.model_dir / "labels.json"))
    else:
        check_labels(classifier.labels, task.labels, classifier.model_dir, task.name)
    return task


def run_split(args: argparse.Namespace, classifier: Classifier) -> dict:
    from autoft.data import features as feats
    from autoft.data import submission

    task = _task_for(args, classifier)
    examples = task.read(args.split)
    features = feats.encode_split(task, args.split, classifier.tokenizer, classifier.max_seq_len, cache=True)
    labels = classifier.predictions(classifier.logits(features, args.batch_size)).labels
    result = {"model_dir": str(classifier.model_dir), "predictions": labels, "accuracy": None, "files": []}
    print(f"predicted {len(labels)} {task.name} {args.split} examples from {task.source_file(args.split)} with "
          f"{classifier.model_dir} (max_seq_len {classifier.max_seq_len}): {_counts(labels, classifier.labels)}")

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
        result["accuracy"] = _score(task, examples, labels)
        print(f"test accuracy: {result['accuracy']:.4f} ({len(labels)} examples)")
    return result


def _score(task, examples, labels: List[str]) -> float:
    gold = task.test_labels()
    if gold is None and task.has_labels("test"):
        gold = [ex.label for ex in examples]
    if gold is None:
        raise AutoftError(f"--score: the {task.name} test split has no labels to score against (in {task.data_dir})")
    if len(gold) != len(labels):
        raise AutoftError(f"--score: {len(gold)} test labels for {len(labels)} test examples in {task.data_dir}")
    return _accuracy(labels, gold)


def _accuracy(pred: List[str], gold: List[str]) -> float:
    return sum(p == g for p, g in zip(pred, gold)) / max(len(gold), 1)


# ------------------------------------------------------------------ entry


def check_args(args: argparse.Namespace) -> None:
    """Flag combinations and ranges that need no model (--max_seq_len: in :func:`run`)."""
    if (args.dataset is None) == (args.input is None):
        found = "both" if args.input else "neither"
        raise AutoftError(f"--dataset / --input: expected one of them (a task's split, or your own text), found {found}")
    if args.input is None and args.output:
        raise AutoftError("--output: expected with --input (a task's predictions go to --output_dir)")
    if args.input is not None and (args.output_dir or args.score or args.split != "test"):
        raise AutoftError("--output_dir / --score / --split: expected with --dataset only, not with --input")
    check_batch_size(args.batch_size, "--batch_size")


def run(args: argparse.Namespace) -> dict:
    """Predict per ``args``; returns {"model_dir", "predictions", "files", ...}."""
    from autoft.runtime import import_paddle

    check_args(args)
    import_paddle()  # first: a missing Paddle is the one message, whatever else is wrong
    model_dir = find_model_dir(args.checkpoint_dir)
    if args.max_seq_len is not None:
        from autoft.checkpoint import read_config

        check_max_seq_len(args.max_seq_len, read_config(model_dir / "config.json").max_position_embeddings,
                          "--max_seq_len")
    classifier = Classifier.load(model_dir, args.max_seq_len, args.use_gpu, args.amp)
    return run_texts(args, classifier) if args.input is not None else run_split(args, classifier)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """predict.py entry point."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    run(args)
    return 0
