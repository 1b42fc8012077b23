"""Classify your own text with a saved classifier.

    from autoft import Classifier
    clf = Classifier.load("output/demo")             # a tuner/train.py output dir or a model dir
    result = clf.predict(["质量很好", "太差了"])
    result.labels           # ['pos', 'neg']
    result.probabilities    # float32 [2, 2], columns in result.classes order
    result.records()        # [{"label": "pos", "probabilities": {"neg": 0.03, "pos": 0.97}}, ...]

Every batch carries an explicit attention mask (padding is masked out), so a text gets the
same probabilities alone and padded inside a batch. predict.py's ``--input`` and its test-split
prediction both run through :meth:`Classifier.logits`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from autoft.errors import AutoftError

AMP_CHOICES = ("none", "fp16", "bf16")
DEFAULT_MAX_SEQ_LEN = 128


@dataclass(frozen=True)
class Predictions:
    """``labels[i]``: the most probable class of text i; ``probabilities[i, j]``: the softmax
    probability of ``classes[j]`` (float32 [N, len(classes)]; ``classes`` is labels.json's order)."""

    labels: List[str]
    probabilities: np.ndarray
    classes: List[str]

    def __len__(self) -> int:
        return len(self.labels)

    def records(self) -> List[Dict]:
        """One ``{"label": ..., "probabilities": {class: p, ...}}`` per text, in input order."""
        return [
            {"label": label, "probabilities": {c: float(p) for c, p in zip(self.classes, row)}}
            for label, row in zip(self.labels, self.probabilities)
        ]


def find_model_dir(checkpoint_dir: Union[str, os.PathLike]) -> Path:
    """The classifier dir inside ``checkpoint_dir``: ``DIR/best_model`` if it holds a model,
    else ``DIR`` itself. Raises AutoftError naming what was looked for."""
    d = Path(checkpoint_dir).expanduser()
    if not d.is_dir():
        raise AutoftError(f"--checkpoint_dir {d}: directory not found (expected a tuner output dir, "
                          "a train.py checkpoint dir or a saved model dir)")
    for cand in (d / "best_model", d):
        if (cand / "labels.json").is_file() and (cand / "config.json").is_file():
            return cand
    raise AutoftError(f"--checkpoint_dir {d}: no classifier found (expected {d}/best_model/ or {d} to hold "
                      "config.json, model.safetensors and labels.json)")


def trained_seq_len(model_dir: Path) -> Optional[int]:
    """The max_seq_len the model was trained with (train_state.json), if recorded."""
    try:
        state = json.loads((model_dir / "train_state.json").read_text(encoding="utf-8"))
        return int(state["hparams"]["max_seq_len"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def check_batch_size(value: int, flag: str = "batch_size") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise AutoftError(f"{flag}: expected an integer >= 1, found {value!r}")
    return int(value)


def check_max_seq_len(value: int, max_positions: int, flag: str = "max_seq_len") -> int:
    """``value`` if it is within [3, the model's max_position_embeddings], else AutoftError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 3 <= value <= max_positions:
        raise AutoftError(
            f"{flag}: expected an integer in [3, {max_positions}] ([CLS] a [SEP] up to the model's "
            f"max_position_embeddings), found {value!r}"
        )
    return int(value)


class Classifier:
    """A saved classifier with its tokenizer, ready to predict (eval mode, no gradients)."""

    def __init__(self, model, tokenizer, model_dir: Path, max_seq_len: int, use_amp: bool = False,
                 amp_dtype: str = "float16"):
        self.model = model
        self.tokenizer = tokenizer
        self.model_dir = Path(model_dir)
        self.max_seq_len = check_max_seq_len(max_seq_len, model.config.max_position_embeddings)
        self.use_amp = use_amp
        self.amp_dtype = amp_dtype

    @classmethod
    def load(cls, checkpoint_dir, max_seq_len: Optional[int] = None, use_gpu: Optional[bool] = None,
             amp: str = "none") -> Classifier:
        """Load ``checkpoint_dir`` (its ``best_model/`` if it has one).

        ``max_seq_len``: tokens per example, default the value the model was trained with (else
        128, at most the model's positions). ``use_gpu``: None = GPU when Paddle has one.
        ``amp``: "fp16"/"bf16" runs the forward pass under auto_cast (GPU only; ignored on CPU
        with a warning). Raises AutoftError for anything missing or out of range.
        """
        from autoft import checkpoint, runtime
        from autoft.finetune import pick_device
        from autoft.tokenizer import BertTokenizer

        if amp not in AMP_CHOICES:
            raise AutoftError(f"amp: expected one of {', '.join(AMP_CHOICES)}, found {amp!r}")
        paddle = runtime.import_paddle()
        model_dir = find_model_dir(checkpoint_dir)
        device = pick_device(paddle, use_gpu, amp)
        model = checkpoint.load_classifier(model_dir)
        positions = model.config.max_position_embeddings
        if max_seq_len is None:
            max_seq_len = min(trained_seq_len(model_dir) or DEFAULT_MAX_SEQ_LEN, positions)
        use_amp = device == "gpu" and amp != "none"
        return cls(model, BertTokenizer.from_dir(model_dir), model_dir, max_seq_len, use_amp,
                   "float16" if amp == "fp16" else "bfloat16")

    @property
    def labels(self) -> List[str]:
        """The class names in id order (labels.json)."""
        return list(self.model.labels)

    def predict(self, texts: Union[str, Sequence[str]], texts_b: Optional[Sequence[Optional[str]]] = None,
                batch_size: int = 32) -> Predictions:
        """Classify ``texts`` (a list of strings, or one string), paired with ``texts_b`` for
        sentence-pair tasks (LCQMC, XNLI); ``None`` in ``texts_b`` makes that example a single text.
        Texts longer than ``max_seq_len`` tokens are truncated as in training."""
        texts_a = [texts] if isinstance(texts, str) else list(texts)
        if texts_b is not None:
            texts_b = [texts_b] if isinstance(texts_b, str) else list(texts_b)
            if len(texts_b) != len(texts_a):
                raise AutoftError(f"texts_b: expected {len(texts_a)} texts (one per text), found {len(texts_b)}")
        _check_texts(texts_a, "texts", allow_none=False)
        if texts_b is not None:
            _check_texts(texts_b, "texts_b", allow_none=True)
        features = self.encode(texts_a, texts_b)
        return self.predictions(self.logits(features, batch_size))

    def encode(self, texts_a: Sequence[str], texts_b: Optional[Sequence[Optional[str]]] = None):
        """Features (autoft.data.features.Features) of the texts, in order."""
        from autoft.data.features import Features

        if texts_b is not None and all(b is None for b in texts_b):
            texts_b = None
        encoded = self.tokenizer.encode_batch(list(texts_a), texts_b, max_seq_len=self.max_seq_len)
        return Features(input_ids=[ids for ids, _ in encoded], token_type_ids=[types for _, types in encoded],
                        labels=None, guids=[str(i) for i in range(len(encoded))],
                        pad_id=int(self.tokenizer.pad_id), max_seq_len=self.max_seq_len)

    def logits(self, features, batch_size: int = 32) -> np.ndarray:
        """float32 logits [N, len(labels)] for every example of ``features``, in their order.

        Batches are length-bucketed for speed (less padding) and put back in order; each one
        passes its attention mask, so padding never changes a text's logits.
        """
        from autoft import runtime
        from autoft.data import features as feats

        batch_size = check_batch_size(batch_size)
        paddle = runtime.import_paddle()
        self.model.eval()
        indices, outputs = [], []
        with paddle.no_grad():
            for batch in feats.batches(features, batch_size, shuffle=False, bucket=True):
                with paddle.amp.auto_cast(enable=self.use_amp, dtype=self.amp_dtype):
                    logits = self.model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
                indices.append(batch["index"])
                outputs.append(logits.astype("float32").numpy())
        if not indices:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return feats.restore_order(indices, outputs)

    def predictions(self, logits: np.ndarray) -> Predictions:
        """Softmax probabilities and the most probable label of each row of ``logits``."""
        logits = np.asarray(logits, dtype=np.float64).reshape(-1, len(self.labels))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return Predictions([self.labels[i] for i in probs.argmax(axis=1)], probs, self.labels)

    def __repr__(self) -> str:
        return f"Classifier({str(self.model_dir)!r}, labels={self.labels}, max_seq_len={self.max_seq_len})"


def _check_texts(texts: Sequence, name: str, allow_none: bool) -> None:
    for i, text in enumerate(texts):
        if text is None and allow_none:
            continue
        if not isinstance(text, str) or not text.strip():
            raise AutoftError(f"{name}[{i}]: expected a non-empty string, found {text!r}")
