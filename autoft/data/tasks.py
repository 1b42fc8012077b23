"""Readers for the four ChineseGLUE tasks in the layouts users actually hold.

File names, columns, header lines, label orders and quirks are PaddleHub 1.4's readers' and
CLUE's published layouts (docs/data.md). Label lists are in PaddleHub's order because the
label ids of old checkpoints depend on it. Nothing is downloaded: users bring the files.

Known quirks of real files (UTF-8 BOM, Windows line ends, blank/trailing lines, TNEWS lines
without keywords, stray quote characters, a few empty texts) are tolerated and counted; each
split read logs ONE summary line. Anything else malformed raises AutoftError naming file:line.
Line 1 follows each task's header rule (``Task.header_expected``, ``Task._first_line``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from autoft.errors import AutoftError, where

log = logging.getLogger("autoft.data")

# Bump when a reader's output for the same file changes: it is part of the feature-cache key.
READER_VERSION = 2  # 2: header lines by PaddleHub 1.4's per-task rule (XNLI's `hypo`)
SPLITS = ("train", "dev", "test")
TASKS = {"tnews", "lcqmc", "xnli", "inews", "custom", "demo"}

TNEWS_LABELS = ["100", "101", "102", "103", "104", "106", "107", "108", "109", "110", "112", "113", "114", "115", "116"]
TNEWS_LABEL_DESC = {
    "100": "news_story",
    "101": "news_culture",
    "102": "news_entertainment",
    "103": "news_sports",
    "104": "news_finance",
    "106": "news_house",
    "107": "news_car",
    "108": "news_edu",
    "109": "news_tech",
    "110": "news_military",
    "112": "news_travel",
    "113": "news_world",
    "114": "stock",
    "115": "news_agriculture",
    "116": "news_game",
}
# Column names seen in real header lines: PaddleHub's LCQMC (text_a text_b label), XNLI zh
# (premise hypo label: "hypo", not "hypothesis"), INEWS train (label id title content).
_HEADER_WORDS = {
    "label", "labels", "id", "qid", "guid", "text_a", "text_b", "text", "sentence", "sentence1", "sentence2",
    "premise", "hypothesis", "hypo", "query", "query1", "query2", "question", "question1", "question2",
    "title", "content", "keywords", "news_id", "label_code", "label_name", "label_desc", "is_duplicate",
    "标签", "类别", "文本", "句子", "句子1", "句子2", "标题", "内容",
}  # fmt: skip
# Any other header: every field a short ASCII identifier (real texts in these sets are Chinese).
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class MissingDataError(AutoftError):
    """A task's data files (or their directory) are not there: `autoft data check` exits 1."""


@dataclass(frozen=True)
class Example:
    """One example: ``guid`` (test-file id or line index), texts, label string or None."""

    guid: str
    text_a: str
    text_b: Optional[str]
    label: Optional[str]


def _format_quirks(quirks: Counter) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(quirks.items()))


def iter_lines(path: Path, quirks: Counter, data: Optional[bytes] = None) -> Iterator[Tuple[int, str]]:
    """(1-based line number, line without its end) for each non-blank line of a UTF-8 file.

    Splits on ``\\n`` only (``str.splitlines`` would also split on characters that occur
    inside real texts). BOM, CR line ends and blank lines are counted in ``quirks``.
    ``data``: the bytes to read instead of the file (stdin); ``path`` then only names them.
    """
    raw = path.read_bytes() if data is None else data
    if raw.startswith(b"\xef\xbb\xbf"):
        quirks["UTF-8 BOM"] += 1
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise AutoftError(
            f"{where(path, line)}: expected UTF-8 text, found the byte 0x{raw[exc.start]:02x}"
        ) from None
    lines = text.split("\n")
    last = len(lines)
    for number, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
            quirks["Windows line ends"] += 1
        if not line.strip():
            if not (number == last and line == ""):  # "" after the final newline is normal
                quirks["blank lines"] += 1
            continue
        yield number, line


def looks_like_header(fields: Sequence[str]) -> bool:
    """True when every field is a known column name such as ``text_a``, ``label``, ``hypo``."""
    return all(f.strip().lower() in _HEADER_WORDS for f in fields)


def reads_as_header(fields: Sequence[str]) -> bool:
    """True when every field could be a column name: a known one or a short ASCII identifier."""
    return all(f.strip().lower() in _HEADER_WORDS or _COLUMN_NAME.fullmatch(f.strip()) for f in fields)


def empty_split_error(path: Path, split: str) -> AutoftError:
    """The one message for a split file without examples, wherever the split is read."""
    return AutoftError(f"{path}: the {split} split is empty: expected at least one example, found none")


# parse(line, line number, quirks, index of the example) -> the Example, or None for a line that
# is not one (a custom header naming its columns); raises AutoftError.
LineParser = Callable[[str, int, Counter, int], Optional[Example]]
HEADER_SKIPPED = "header lines skipped (line 1)"
HEADER_ABSENT = "files without their header line (line 1 read as data)"


class Task:
    """A dataset on disk: its label list, where its files are, and a reader per split."""

    name: str = ""
    labels: List[str] = []
    hint: str = ""  # where to get the files, for the missing-files message

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.quirks: Dict[str, Counter] = {}
        self._cache: Dict[str, List[Example]] = {}

    # -- files --------------------------------------------------------------------------
    def expected_files(self) -> List[str]:
        """File names (relative to data_dir) this task reads, train/dev/test order."""
        return [self.file_name(s) for s in SPLITS]

    def file_name(self, split: str) -> str:
        raise NotImplementedError

    def source_file(self, split: str) -> Path:
        """The file a split is read from; AutoftError listing all expected files if missing."""
        if split not in SPLITS:
            raise AutoftError(f"split: expected one of {', '.join(SPLITS)}, found {split!r}")
        path = self.data_dir / self.file_name(split)
        if not path.is_file():
            raise MissingDataError(self.missing_message([split]))
        return path

    def missing_message(self, splits: Sequence[str]) -> str:
        """One message: which files are missing, all expected names, where to get them."""
        missing = [self.file_name(s) for s in splits]
        if not self.data_dir.is_dir():
            found = "the directory does not exist"
        else:
            have = [f for f in self.expected_files() if (self.data_dir / f).is_file()]
            found = f"found {', '.join(have)}" if have else "none found"
        expected = self.expected_files()
        also = "" if set(missing) >= set(expected) else f"; expected files {', '.join(expected)}"
        return (
            f"{self.data_dir}: {self.name} data missing {', '.join(missing)}{also} ({found}). "
            f"Put them there, or pass --data_dir DIR. {self.hint}"
        )

    # -- reading ------------------------------------------------------------------------
    def read(self, split: str) -> List[Example]:
        """All examples of a split, in file order (read once, then kept in memory)."""
        if split not in self._cache:
            path = self.source_file(split)
            quirks: Counter = Counter()
            examples = self._read(path, split, quirks)
            self._check_labels(examples, path, split)
            self.quirks[split] = quirks
            note = f"; tolerated: {_format_quirks(quirks)}" if quirks else ""
            log.info("%s %s: %d examples from %s%s", self.name, split, len(examples), path, note)
            self._cache[split] = examples
        return self._cache[split]

    def _read(self, path: Path, split: str, quirks: Counter) -> List[Example]:
        raise NotImplementedError

    def header_expected(self, path: Path, split: str) -> Optional[bool]:
        """PaddleHub 1.4's rule: does line 1 of this split's file hold column names?
        None: either way (custom data): a missing header is no quirk, nor one of known names."""
        return False

    def _read_lines(self, path: Path, split: str, quirks: Counter, parse: LineParser, sep: str) -> List[Example]:
        """Every line through ``parse``, line 1 through the header rule of :meth:`_first_line`."""
        out: List[Example] = []
        first = True
        for number, line in iter_lines(path, quirks):
            if first:
                first = False
                example = self._first_line(path, split, quirks, parse, line.split(sep), line, number)
                if example is not None:
                    out.append(example)
                continue
            example = parse(line, number, quirks, len(out))
            if example is not None:
                out.append(example)
        return out

    def _first_line(
        self, path: Path, split: str, quirks: Counter, parse: LineParser, fields: List[str], line: str, number: int
    ) -> Optional[Example]:
        """Line 1: a header is skipped, whether the task's files have one there or not.

        A header is a line of known column names, or a line that fails as an example and reads
        as column names (never an error). A header where the task has none, or data where it
        has one, is counted as a quirk: nothing is lost either way.
        """
        scratch: Counter = Counter()
        try:
            example = parse(line, number, scratch, 0)
        except AutoftError:
            if not reads_as_header(fields):
                raise
            example, header = None, True
        else:
            if example is None:  # a header the reader itself used (custom column names)
                return None
            header = looks_like_header(fields)
        expected = self.header_expected(path, split)
        if header:
            # Counted where the task's files have no header, and wherever only the loose rule
            # (ASCII identifiers on a failing line) saw one: it might be a mistyped example.
            if expected is False or (expected is None and not looks_like_header(fields)):
                quirks[HEADER_SKIPPED] += 1
            return None
        quirks.update(scratch)
        if expected:
            quirks[HEADER_ABSENT] += 1
        return example

    def _check_labels(self, examples: List[Example], path: Path, split: str) -> None:
        if not examples:
            raise empty_split_error(path, split)
        labeled = [e.label is not None for e in examples]
        if split != "test" and not all(labeled):
            raise AutoftError(f"{path}: expected a label on every {split} example, found {labeled.count(False)} without")
        if any(labeled) and not all(labeled):
            raise AutoftError(
                f"{path}: expected labels on all examples or on none, found {labeled.count(True)} with "
                f"and {labeled.count(False)} without"
            )

    def has_labels(self, split: str) -> bool:
        """True when the split's examples carry labels (test splits may not)."""
        return self.read(split)[0].label is not None

    def test_labels(self) -> Optional[List[str]]:
        """Labels kept aside for an unlabeled test split (the demo set); else None."""
        return None

    def label_desc(self, label: str) -> Optional[str]:
        """Human-readable name of a label where the leaderboard wants one (TNEWS)."""
        return None

    @property
    def submission_stem(self) -> str:
        """`<stem>_predict.json` is the leaderboard file name."""
        return self.name

    def check_label(self, label: str, path: Path, line: int) -> str:
        if label not in self._label_set:
            raise AutoftError(
                f"{where(path, line)}: expected a label in {{{', '.join(self.labels)}}}, found {label!r}"
            )
        return label

    @property
    def _label_set(self) -> set:
        return set(self.labels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, data_dir={str(self.data_dir)!r})"


def _text(value: str, quirks: Counter, what: str) -> str:
    value = value.strip()
    if not value:
        quirks[f"empty {what}"] += 1  # the benchmark sets hold a few empty texts (docs/data.md)
    return value


class TNews(Task):
    """TNEWS: ChineseGLUE 2019 `_!_` files, or the CLUE 1.0/1.1 JSON-lines layout."""

    name = "tnews"
    labels = TNEWS_LABELS
    hint = (
        "TNEWS 2019: toutiao_category_{train,dev,test}.txt from ChineseGLUE (github.com/chineseGLUE/chineseGLUE) or "
        "PaddleHub 1.x's ~/.paddlehub/dataset/tnews/; or the CLUE 1.x layout train.json/dev.json/test.json "
        "(github.com/CLUEbenchmark/CLUE, tnews_public)."
    )
    CLUE_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}
    OLD_FILES = {s: f"toutiao_category_{s}.txt" for s in SPLITS}

    def __init__(self, data_dir: Path):
        super().__init__(data_dir)
        old = sum((self.data_dir / f).is_file() for f in self.OLD_FILES.values())
        clue = sum((self.data_dir / f).is_file() for f in self.CLUE_FILES.values())
        self.layout = "clue" if clue > old else "2019"

    def file_name(self, split: str) -> str:
        return (self.CLUE_FILES if self.layout == "clue" else self.OLD_FILES)[split]

    @property
    def submission_stem(self) -> str:
        if self.layout == "clue":
            # CLUE 1.1 ships test1.0.json beside its test.json; 1.0 does not.
            return "tnews11" if (self.data_dir / "test1.0.json").is_file() else "tnews10"
        return "tnews"

    def label_desc(self, label: str) -> Optional[str]:
        return TNEWS_LABEL_DESC.get(label)

    def _read(self, path: Path, split: str, quirks: Counter) -> List[Example]:
        if self.layout == "clue":
            return self._read_lines(path, split, quirks, self._parse_clue(path), "\t")
        return self._read_lines(path, split, quirks, self._parse_2019(path), "_!_")

    def _parse_2019(self, path: Path) -> LineParser:
        what = "news_id _!_ label_code _!_ label_name _!_ title _!_ keywords"

        def parse(line: str, number: int, quirks: Counter, index: int) -> Example:
            fields = line.split("_!_", 4)
            if len(fields) < 4:
                raise AutoftError(
                    f"{where(path, number)}: expected 5 '_!_'-separated fields ({what}), found {len(fields)}: {line[:80]!r}"
                )
            label = self.check_label(fields[1].strip(), path, number)
            if len(fields) == 4:
                quirks["lines without keywords"] += 1
            if '"' in line:
                quirks['lines with " characters (kept as text)'] += 1
            return Example(fields[0].strip(), _text(fields[3], quirks, "titles"), None, label)

        return parse

    def _parse_clue(self, path: Path) -> LineParser:
        def parse(line: str, number: int, quirks: Counter, index: int) -> Example:
            obj = _json_object(line, path, number)
            sentence = obj.get("sentence")
            if not isinstance(sentence, str):
                raise AutoftError(f"{where(path, number)}: expected a \"sentence\" string, found {sentence!r}")
            label = obj.get("label")
            if label is not None:
                label = self.check_label(str(label), path, number)
            if "keywords" not in obj:
                quirks["lines without keywords"] += 1
            return Example(str(obj.get("id", index)), _text(sentence, quirks, "sentences"), None, label)

        return parse


def _json_object(line: str, path: Path, number: int) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AutoftError(f"{where(path, number)}: expected a JSON object, found invalid JSON ({exc.msg}): {line[:80]!r}") from None
    if not isinstance(obj, dict):
        raise AutoftError(f"{where(path, number)}: expected a JSON object, found {type(obj).__name__}")
    return obj


class _TsvPairTask(Task):
    """`text_a TAB text_b TAB label` files; the header rule of :meth:`Task._first_line`."""

    columns = "text_a TAB text_b TAB label"
    allow_unlabeled_test = False

    def _read(self, path: Path, split: str, quirks: Counter) -> List[Example]:
        width: List[int] = []  # fields per line, fixed by the first example

        def parse(line: str, number: int, quirks: Counter, index: int) -> Example:
            fields = line.split("\t")
            # A test split may come without the label column (later LCQMC copies).
            unlabeled = split == "test" and len(fields) == 2 and self.allow_unlabeled_test
            n = width[0] if width else (2 if unlabeled else 3)
            if len(fields) != n:
                raise AutoftError(
                    f"{where(path, number)}: expected {n} TAB-separated fields "
                    f"({self.columns if n == 3 else 'text_a TAB text_b'}), found {len(fields)}: {line[:80]!r}"
                )
            label = self.check_label(self.normalize_label(fields[2].strip(), quirks), path, number) if n == 3 else None
            width[:] = [n]
            if '"' in line:
                quirks['lines with " characters (kept as text)'] += 1
            return Example(str(index), _text(fields[0], quirks, "text_a"), _text(fields[1], quirks, "text_b"), label)

        return self._read_lines(path, split, quirks, parse, "\t")

    def normalize_label(self, label: str, quirks: Counter) -> str:
        return label


class Lcqmc(_TsvPairTask):
    name = "lcqmc"
    labels = ["0", "1"]
    allow_unlabeled_test = True
    hint = (
        "LCQMC: PaddleHub 1.x's ~/.paddlehub/dataset/lcqmc/ (train.tsv, dev.tsv, test.tsv with headers) or "
        "ChineseGLUE's copy (train.txt, dev.txt, test.txt, no header)."
    )

    def file_name(self, split: str) -> str:
        # PaddleHub's .tsv packaging unless only ChineseGLUE's .txt copy is present.
        tsv, txt = f"{split}.tsv", f"{split}.txt"
        if not (self.data_dir / tsv).is_file() and (self.data_dir / txt).is_file():
            return txt
        if not any((self.data_dir / f"{s}.tsv").is_file() for s in SPLITS) and any(
            (self.data_dir / f"{s}.txt").is_file() for s in SPLITS
        ):
            return txt
        return tsv

    def header_expected(self, path: Path, split: str) -> bool:
        # PaddleHub's .tsv packaging has a header in every split; ChineseGLUE's .txt none.
        return path.suffix == ".tsv"


class Xnli(_TsvPairTask):
    name = "xnli"
    labels = ["neutral", "contradiction", "entailment"]
    columns = "premise TAB hypothesis TAB label"
    hint = "XNLI (zh): PaddleHub 1.x's ~/.paddlehub/dataset/XNLI-lan/zh/ or ChineseGLUE's xnli copy."

    def __init__(self, data_dir: Path):
        # Accept the XNLI-lan directory itself as well as its zh/ sub-directory.
        data_dir = Path(data_dir)
        if not (data_dir / "zh_train.tsv").is_file() and (data_dir / "zh" / "zh_train.tsv").is_file():
            data_dir = data_dir / "zh"
        super().__init__(data_dir)

    def file_name(self, split: str) -> str:
        return f"zh_{split}.tsv"

    def header_expected(self, path: Path, split: str) -> bool:
        # `premise<TAB>hypo<TAB>label` in every split: PaddleHub 1.4 skips line 1 unconditionally.
        return True

    def normalize_label(self, label: str, quirks: Counter) -> str:
        # XNLI's machine-translated training set spells it "contradictory" (Google's BERT
        # XnliProcessor maps it the same way).
        if label == "contradictory":
            quirks['"contradictory" labels read as "contradiction"'] += 1
            return "contradiction"
        return label


class Inews(Task):
    name = "inews"
    labels = ["0", "1", "2"]
    hint = "INEWS: PaddleHub 1.x's ~/.paddlehub/dataset/inews/ or ChineseGLUE's inews copy (train.txt, dev.txt, test.txt)."

    def file_name(self, split: str) -> str:
        return f"{split}.txt"

    def header_expected(self, path: Path, split: str) -> bool:
        # Only train.txt has one (PaddleHub 1.4.1; skipping it everywhere lost dev/test data).
        return split == "train"

    def _read(self, path: Path, split: str, quirks: Counter) -> List[Example]:
        what = "label _!_ id _!_ title _!_ content"

        def parse(line: str, number: int, quirks: Counter, index: int) -> Example:
            fields = line.split("_!_", 3)
            if len(fields) != 4:
                raise AutoftError(
                    f"{where(path, number)}: expected 4 '_!_'-separated fields ({what}), found {len(fields)}: {line[:80]!r}"
                )
            label = self.check_label(fields[0].strip(), path, number)
            if '"' in line:
                quirks['lines with " characters (kept as text)'] += 1
            title = _text(fields[2], quirks, "titles")
            return Example(fields[1].strip(), title, _text(fields[3], quirks, "contents"), label)

        return self._read_lines(path, split, quirks, parse, "_!_")
