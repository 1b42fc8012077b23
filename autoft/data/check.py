"""`autoft data check`: read every split of a dataset and describe it.

Counts, label distribution, length percentiles (characters; tokens when a vocabulary is
known) and how many examples max_seq_len would truncate. Reading validates the files: the
first malformed line raises AutoftError naming file:line.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from autoft.data.registry import load_task
from autoft.data.tasks import SPLITS, Task, _format_quirks
from autoft.errors import AutoftError

PERCENTILES = (50, 90, 95, 99)


def _percentiles(values: np.ndarray) -> str:
    if len(values) == 0:
        return "-"
    ps = np.percentile(values, PERCENTILES, method="nearest")
    parts = [f"p{p}={int(v)}" for p, v in zip(PERCENTILES, ps)]
    return " ".join(parts + [f"max={int(values.max())}"])


def _tokenizer_for(task: Task, vocab: Optional[str]):
    from autoft.tokenizer import BertTokenizer

    if vocab:
        path = Path(vocab)
        return BertTokenizer.from_dir(path) if path.is_dir() else BertTokenizer.from_vocab(path)
    if task.name == "demo":
        return BertTokenizer.from_dir(task.data_dir)
    return None


def check_dataset(name: str, data_dir=None, max_seq_len: int = 128, vocab: Optional[str] = None) -> Tuple[str, List[str]]:
    """Validate all splits; returns (report text, list of missing split names)."""
    task = load_task(name, data_dir)
    tokenizer = _tokenizer_for(task, vocab)
    lines = [f"dataset {task.name} in {task.data_dir}", f"labels ({len(task.labels)}): {' '.join(task.labels)}"]
    missing = []
    for split in SPLITS:
        try:
            path = task.source_file(split)
        except AutoftError:
            missing.append(split)
            lines.append(f"\n[{split}] missing: {task.file_name(split)}")
            continue
        examples = task.read(split)
        lines.append(f"\n[{split}] {path}: {len(examples)} examples")
        labels = [e.label for e in examples]
        if split == "test" and labels[0] is None:
            kept = task.test_labels()
            if kept is not None:
                if len(kept) != len(examples):
                    raise AutoftError(
                        f"{task.data_dir / 'test_labels.tsv'}: expected {len(examples)} labels (one per test example), found {len(kept)}"
                    )
                labels = kept
                lines.append("  labels: none in the file (kept aside in test_labels.tsv)")
            else:
                labels = []
                lines.append("  labels: none (prediction only)")
        if labels:
            counts = Counter(labels)
            dist = ", ".join(f"{lab}: {counts.get(lab, 0)} ({100.0 * counts.get(lab, 0) / len(labels):.1f}%)" for lab in task.labels)
            lines.append(f"  label distribution: {dist}")
        chars = np.array([len(e.text_a) + len(e.text_b or "") for e in examples], dtype=np.int64)
        pair = examples[0].text_b is not None
        lines.append(f"  length in characters{' (text_a + text_b)' if pair else ''}: {_percentiles(chars)}")
        if tokenizer is not None:
            toks = tokenizer.lengths([e.text_a for e in examples], [e.text_b for e in examples] if pair else None)
            over = int((toks > max_seq_len).sum())
            lines.append(f"  length in tokens (with [CLS]/[SEP]): {_percentiles(toks)}")
            lines.append(f"  truncated at max_seq_len={max_seq_len}: {over} ({100.0 * over / len(examples):.1f}%)")
        else:
            over = int((chars + (3 if pair else 2) > max_seq_len).sum())
            lines.append(
                f"  over max_seq_len={max_seq_len} by characters (an estimate: a Chinese character is one token; "
                f"pass --vocab for exact counts): {over} ({100.0 * over / len(examples):.1f}%)"
            )
        if task.quirks.get(split):
            lines.append(f"  tolerated: {_format_quirks(task.quirks[split])}")
    if missing:
        lines.append("\n" + task.missing_message(missing))
    return "\n".join(lines), missing
