"""Custom data sets: `--dataset custom --data_dir D`.

Each split is ``<split>.tsv`` (``label<TAB>text_a[<TAB>text_b]``; an optional header line
naming the columns among label, id, text_a, text_b) or ``<split>.jsonl`` / ``<split>.json``
(JSON lines with ``label``, ``sentence``, optional ``sentence2`` and ``id``). A test split may
leave labels out (a header without ``label``, or JSON lines without the key). Labels come from
``labels.txt`` (one per line) if present, else from train in first-seen order.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence

from autoft.data.tasks import (
    SPLITS,
    Example,
    MissingDataError,
    Task,
    _json_object,
    empty_split_error,
    iter_lines,
    reads_as_header,
)
from autoft.errors import AutoftError, where

_COLUMNS = {"label", "id", "text_a", "text_b"}
_EXTENSIONS = (".tsv", ".jsonl", ".json")


class CustomTask(Task):
    name = "custom"
    hint = (
        "Custom data: <split>.tsv lines `label<TAB>text_a[<TAB>text_b]` (header optional) or <split>.jsonl "
        "lines {\"label\": ..., \"sentence\": ..., \"sentence2\": ..., \"id\": ...}; optional labels.txt."
    )

    def __init__(self, data_dir: Path, name: str = "custom"):
        super().__init__(data_dir)
        self.name = name
        self._labels: Optional[List[str]] = None
        self._labels_source: Optional[str] = None  # set by adopt_labels
        if not any((self.data_dir / self.file_name(s)).is_file() for s in SPLITS):
            raise MissingDataError(self.missing_message(SPLITS))

    def file_name(self, split: str) -> str:
        for ext in _EXTENSIONS:
            if (self.data_dir / f"{split}{ext}").is_file():
                return f"{split}{ext}"
        return f"{split}.tsv"

    def expected_files(self) -> List[str]:
        return [self.file_name(s) for s in SPLITS]

    def header_expected(self, path: Path, split: str) -> Optional[bool]:
        return None  # a header is optional here

    def missing_message(self, splits) -> str:
        return super().missing_message(splits).replace(" (", " (or .jsonl instead of .tsv; ", 1)

    # -- labels -------------------------------------------------------------------------
    @property
    def labels(self) -> List[str]:  # type: ignore[override]
        """labels.txt order if present, else the order labels first appear in train."""
        if self._labels is None:
            self._labels = self._labels_file() or self._labels_of_train()
        return self._labels

    def adopt_labels(self, labels: Sequence[str], source: str) -> None:
        """Use ``labels`` (a checkpoint's, named by ``source``) instead of reading train, so that
        predicting needs only the file predicted. A labels.txt that disagrees is an error."""
        listed = self._labels_file()
        if listed is not None and listed != list(labels):
            raise AutoftError(
                f"{self.data_dir / 'labels.txt'}: the labels {listed} differ from {source}'s {list(labels)} "
                "(same strings, same order)"
            )
        self._labels = list(labels)
        self._labels_source = source

    def check_label(self, label: str, path: Path, line: int) -> str:
        if label not in self._label_set and self._labels_source:
            raise AutoftError(
                f"{where(path, line)}: expected a label in {{{', '.join(self.labels)}}} (the labels of "
                f"{self._labels_source}), found {label!r}"
            )
        return super().check_label(label, path, line)

    def _labels_file(self) -> Optional[List[str]]:
        labels_file = self.data_dir / "labels.txt"
        if not labels_file.is_file():
            return None
        labels: List[str] = []
        for number, line in iter_lines(labels_file, Counter()):
            label = line.strip()
            if label in labels:
                raise AutoftError(f"{where(labels_file, number)}: expected each label once, found {label!r} again")
            labels.append(label)
        if not labels:
            raise AutoftError(f"{labels_file}: expected one label per line, found none")
        return labels

    def _labels_of_train(self) -> List[str]:
        path = self.source_file("train")
        self._labels = []  # _read with collect=True checks no label against this
        train = self._read(path, "train", Counter(), collect=True)
        if train and reads_as_header([train[0].label or "", train[0].text_a, train[0].text_b or ""]):
            # Line 1 reads as column names; a label seen nowhere else is its header, not a label.
            if all(e.label != train[0].label for e in train[1:]):
                train = train[1:]
        if not train:
            raise empty_split_error(path, "train")
        return list(dict.fromkeys(e.label for e in train))

    @property
    def _label_set(self) -> set:
        return set(self.labels)

    # -- reading ------------------------------------------------------------------------
    def _read(self, path: Path, split: str, quirks: Counter, collect: bool = False) -> List[Example]:
        if path.suffix in (".jsonl", ".json"):
            return self._read_jsonl(path, split, quirks, collect)
        return self._read_tsv(path, split, quirks, collect)

    def _label(self, value, path: Path, number: int, collect: bool) -> Optional[str]:
        if value is None:
            return None
        label = str(value).strip()
        if collect:
            if not label:
                raise AutoftError(f"{where(path, number)}: expected a label, found an empty field")
            return label
        return self.check_label(label, path, number)

    def _required_text(self, value, path: Path, number: int, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            found = "an empty text" if isinstance(value, str) else repr(value)
            raise AutoftError(f"{where(path, number)}: expected a non-empty {what}, found {found}")
        return value.strip()

    def _read_tsv(self, path: Path, split: str, quirks: Counter, collect: bool) -> List[Example]:
        columns: List[str] = []  # from a header naming them, else fixed by the first example

        def parse(line: str, number: int, quirks: Counter, index: int) -> Optional[Example]:
            fields = line.split("\t")
            if not columns:
                names = [f.strip().lower() for f in fields]
                if set(names) <= _COLUMNS and "text_a" in names and len(set(names)) == len(names):
                    if split != "test" and "label" not in names:
                        raise AutoftError(f"{where(path, number)}: expected a label column in the {split} header, found {line!r}")
                    columns.extend(names)
                    return None
                if len(fields) not in (2, 3):
                    raise AutoftError(
                        f"{where(path, number)}: expected 2 or 3 TAB-separated fields (label TAB text_a [TAB text_b]), "
                        f"found {len(fields)}: {line[:80]!r}"
                    )
            names = columns or ["label", "text_a", "text_b"][: len(fields)]
            if len(fields) != len(names):
                raise AutoftError(
                    f"{where(path, number)}: expected {len(names)} TAB-separated fields ({' TAB '.join(names)}), "
                    f"found {len(fields)}: {line[:80]!r}"
                )
            row = dict(zip(names, fields))
            label = self._label(row.get("label"), path, number, collect)
            text_a = self._required_text(row["text_a"], path, number, "text_a")
            text_b = self._required_text(row["text_b"], path, number, "text_b") if "text_b" in row else None
            columns[:] = names
            if '"' in line:
                quirks['lines with " characters (kept as text)'] += 1
            return Example(row["id"].strip() if "id" in row else str(index), text_a, text_b, label)

        return self._read_lines(path, split, quirks, parse, "\t")

    def _read_jsonl(self, path: Path, split: str, quirks: Counter, collect: bool) -> List[Example]:
        has_b: List[bool] = []  # whether lines carry "sentence2", fixed by the first example

        def parse(line: str, number: int, quirks: Counter, index: int) -> Example:
            obj = _json_object(line, path, number)
            text_a = self._required_text(obj.get("sentence"), path, number, '"sentence" string')
            text_b = None
            if "sentence2" in obj:
                text_b = self._required_text(obj.get("sentence2"), path, number, '"sentence2" string')
            if has_b and has_b[0] != (text_b is not None):
                raise AutoftError(
                    f"{where(path, number)}: expected {'a' if has_b[0] else 'no'} \"sentence2\" like the first line, "
                    f"found {'none' if has_b[0] else 'one'}"
                )
            if "label" not in obj and split != "test":
                raise AutoftError(f"{where(path, number)}: expected a \"label\" key in the {split} split, found keys {sorted(obj)}")
            label = self._label(obj.get("label"), path, number, collect)
            has_b[:] = [text_b is not None]
            return Example(str(obj.get("id", index)), text_a, text_b, label)

        return self._read_lines(path, split, quirks, parse, "\t")
