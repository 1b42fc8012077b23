"""What the train/predict tests write for themselves: a two-label custom task that a tiny model
can learn (the labels differ by character) and a tiny random 'pretrained' model. Not collected
by pytest (no test_ prefix); imported as ``tests.tiny_world``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

POS, NEG, SHARED = "好棒赞美爱喜", "差坏烂糟恨怒", "的了是我"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The tiny encoder's shape (2 layers, hidden 16); a test overrides what it needs smaller.
TINY_SHAPE = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=32)


def write_split(path: Path, rng, n: int, labels: Sequence[str] = ("pos", "neg")) -> None:
    """``n`` examples with a header, labels in turn; the first label's texts draw from POS, the
    others' from NEG, all mixed with SHARED."""
    lines = ["label\ttext_a"]
    for i in range(n):
        label = labels[i % len(labels)]
        pool = (POS if label == labels[0] else NEG) + SHARED
        lines.append(f"{label}\t{''.join(rng.choice(pool) for _ in range(rng.randint(4, 9)))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_custom_task(data: Path, rng, n_train: int, n_dev: int, n_test: int) -> Path:
    """A custom task in ``data``: train/dev/test.tsv and labels.txt (pos, neg)."""
    data.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
        write_split(data / f"{split}.tsv", rng, n)
    (data / "labels.txt").write_text("pos\nneg\n", encoding="utf-8")
    return data


def write_vocab(path: Path, chars: str = POS + NEG + SHARED) -> Path:
    path.write_text("\n".join([*SPECIAL, *chars]) + "\n", encoding="utf-8")
    return path


def write_tiny_model(model_dir: Path, vocab: Path, seed=None, **shape) -> Path:
    """A random BertModel over ``vocab`` saved in autoft's format (``paddle.seed(seed)`` first
    when given); ``shape`` overrides TINY_SHAPE."""
    from autoft.checkpoint import save_pretrained
    from autoft.model import BertConfig, BertModel
    from autoft.runtime import import_paddle

    if seed is not None:
        import_paddle().seed(seed)
    size = len(vocab.read_text(encoding="utf-8").splitlines())
    config = BertConfig(vocab_size=size, **{**TINY_SHAPE, **shape})
    return save_pretrained(BertModel(config), model_dir, vocab)
