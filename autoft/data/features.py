"""Features for training: a whole split tokenized once, cached on disk, served as padded batches.

A search runs the training script popsize x rounds times; tokenizing is done by the first
trial and loaded from ``$AUTOFT_HOME/cache/features`` by every later one. The cache key covers
everything the features depend on: the split file's bytes, the vocab bytes, max_seq_len,
lower-casing, the label list and the reader version. Files are ``.npz`` without pickled
objects, written to a temp name and renamed, so parallel trials racing to write the same
entry cannot leave a corrupt one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np

from autoft import atomic
from autoft.data.tasks import READER_VERSION, Task
from autoft.paths import autoft_home

log = logging.getLogger("autoft.data")

CACHE_FORMAT = 1
# Training batches are length-sorted inside windows of this many batches: similar lengths
# share a batch (less padding) while the order stays random across windows.
BUCKET_WINDOW = 50


@dataclass
class Features:
    """Token ids of one split, in file order."""

    input_ids: List[np.ndarray]  # int64, one array per example, [CLS] ... [SEP] (untruncated <= max_seq_len)
    token_type_ids: List[np.ndarray]
    labels: Optional[np.ndarray]  # int64 [N] label ids, None when the split has no labels
    guids: List[str]
    pad_id: int = 0
    max_seq_len: int = 128
    from_cache: bool = False
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self):
        if len(self.lengths) != len(self.input_ids):
            self.lengths = np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(task: Task, split: str, tokenizer, max_seq_len: int) -> str:
    """Hex key of everything a split's features depend on."""
    parts = {
        "format": CACHE_FORMAT,
        "reader": READER_VERSION,
        "task": task.name,
        "split": split,
        "file": file_sha1(task.source_file(split)),
        "vocab": tokenizer.vocab_hash,
        "lower": bool(tokenizer.do_lower_case),
        "max_seq_len": int(max_seq_len),
        "labels": list(task.labels),
    }
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def cache_dir() -> Path:
    return autoft_home() / "cache" / "features"


def _save(path: Path, feats: Features) -> None:
    offsets = np.zeros(len(feats) + 1, dtype=np.int64)
    np.cumsum(feats.lengths, out=offsets[1:])
    arrays = {
        "input_ids": np.concatenate(feats.input_ids).astype(np.int32) if len(feats) else np.zeros(0, np.int32),
        "token_type_ids": np.concatenate(feats.token_type_ids).astype(np.int8) if len(feats) else np.zeros(0, np.int8),
        "offsets": offsets,
        "labels": feats.labels if feats.labels is not None else np.zeros(0, dtype=np.int64),
        "has_labels": np.array(feats.labels is not None),
        "guids": np.array(feats.guids, dtype=np.str_),
        "meta": np.array([feats.pad_id, feats.max_seq_len], dtype=np.int64),
    }
    buf = io.BytesIO()  # a file object: np.savez would append ".npz" to a name
    np.savez(buf, **arrays)
    # Parallel trials may write the same entry: each writer has its own temp file.
    atomic.write_bytes(path, buf.getvalue())


def _load(path: Path) -> Optional[Features]:
    try:
        with np.load(path, allow_pickle=False) as z:
            offsets = z["offsets"]
            ids = z["input_ids"].astype(np.int64)
            types = z["token_type_ids"].astype(np.int64)
            labels = z["labels"] if bool(z["has_labels"]) else None
            guids = z["guids"].tolist()
            pad_id, max_seq_len = (int(v) for v in z["meta"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        log.warning("feature cache %s unreadable (%s): tokenizing again", path, exc)
        return None
    cuts = offsets[1:-1]
    return Features(
        input_ids=np.split(ids, cuts),
        token_type_ids=np.split(types, cuts),
        labels=labels,
        guids=guids,
        pad_id=pad_id,
        max_seq_len=max_seq_len,
        from_cache=True,
        lengths=np.diff(offsets),
    )


def encode_split(task: Task, split: str, tokenizer, max_seq_len: int, cache: bool = True) -> Features:
    """Tokenize a whole split in one ``encode_batch`` call, or load it from the cache.

    Labels become ids in ``task.labels`` order. Raises AutoftError for missing/bad files.
    """
    path = cache_dir() / f"{task.name}-{split}-{cache_key(task, split, tokenizer, max_seq_len)[:20]}.npz"
    if cache and path.is_file():
        feats = _load(path)
        if feats is not None:
            log.info("%s %s: %d examples from the feature cache", task.name, split, len(feats))
            return feats
    examples = task.read(split)
    texts_b = [e.text_b for e in examples]
    encoded = tokenizer.encode_batch(
        [e.text_a for e in examples], None if all(b is None for b in texts_b) else texts_b, max_seq_len=max_seq_len
    )
    labels = None
    if task.has_labels(split):
        index: Dict[str, int] = {label: i for i, label in enumerate(task.labels)}
        labels = np.array([index[e.label] for e in examples], dtype=np.int64)
    feats = Features(
        input_ids=[ids for ids, _ in encoded],
        token_type_ids=[types for _, types in encoded],
        labels=labels,
        guids=[e.guid for e in examples],
        pad_id=int(tokenizer.pad_id),
        max_seq_len=int(max_seq_len),
    )
    if cache:
        try:
            _save(path, feats)
        except OSError as exc:  # a read-only home must not stop training
            log.warning("could not write the feature cache %s: %s", path, exc)
    return feats


def batch_indices(
    lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0, bucket: bool = True
) -> List[np.ndarray]:
    """Example indices of each batch.

    Training (``shuffle``): a seeded permutation per (seed, epoch); with ``bucket`` it is cut
    into windows of BUCKET_WINDOW batches, each window sorted by length and cut into batches,
    and the batch order shuffled. Without ``shuffle``: file order (``bucket`` then sorts by
    length for speed; callers restore order with each batch's ``index``).
    """
    n = len(lengths)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not shuffle:
        order = np.argsort(lengths, kind="stable") if bucket else np.arange(n)
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng([int(seed), int(epoch)])
    perm = rng.permutation(n)
    if not bucket:
        return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    window = batch_size * BUCKET_WINDOW
    out = []
    for start in range(0, n, window):
        chunk = perm[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def pad_batch(feats: Features, index: np.ndarray) -> Dict[str, np.ndarray]:
    """Numpy int64 arrays [B, longest in batch]: input_ids (pad_id), token_type_ids (0),
    attention_mask (1 token / 0 pad), plus labels [B] and the example ``index`` [B]."""
    width = int(feats.lengths[index].max())
    ids = np.full((len(index), width), feats.pad_id, dtype=np.int64)
    types = np.zeros((len(index), width), dtype=np.int64)
    mask = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        n = feats.lengths[i]
        ids[row, :n] = feats.input_ids[i]
        types[row, :n] = feats.token_type_ids[i]
        mask[row, :n] = 1
    out = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "index": np.asarray(index, dtype=np.int64)}
    if feats.labels is not None:
        out["labels"] = feats.labels[index]
    return out


def batches(
    features: Features,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    bucket: Optional[bool] = None,
    as_numpy: bool = False,
) -> Iterator[Dict]:
    """Padded batches of a split: dicts of paddle int64 tensors ``input_ids``,
    ``token_type_ids``, ``attention_mask`` [B, L_max_in_batch] and ``labels`` [B] (if any),
    plus ``index`` (numpy int64 [B], positions in file order).

    ``shuffle=True`` (training): every example exactly once per epoch, length-bucketed
    (``bucket`` defaults to True), deterministic for (seed, epoch). ``shuffle=False``
    (evaluation/prediction): file order by default; ``bucket=True`` sorts by length for
    speed, and then ``index`` (or ``restore_order``) puts outputs back in file order.
    ``as_numpy`` yields numpy arrays instead of tensors.
    """
    if bucket is None:
        bucket = shuffle  # never reorder evaluation/prediction unless asked
    to_tensor = None
    if not as_numpy:
        from autoft.runtime import import_paddle

        to_tensor = import_paddle().to_tensor
    for index in batch_indices(features.lengths, batch_size, shuffle, seed, epoch, bucket):
        batch = pad_batch(features, index)
        if to_tensor is not None:
            batch = {k: (v if k == "index" else to_tensor(v)) for k, v in batch.items()}
        yield batch


def restore_order(indices: List[np.ndarray], values: List[np.ndarray]) -> np.ndarray:
    """Put per-batch outputs (e.g. predicted ids) back in file order using batch ``index``es."""
    index = np.concatenate(indices)
    flat = np.concatenate([np.asarray(v) for v in values])
    out = np.empty_like(flat)
    out[index] = flat
    return out
