"""Leaderboard files: CLUE JSON lines (zipped) and the 2019 ChineseGLUE one-label-per-line .txt.

CLUE takes a zip of ``<task>_predict.json`` files, one ``{"id": ..., "label": "..."}`` per test
example (TNEWS adds ``"label_desc"``; TNEWS 1.1 is ``tnews11_predict.json``, 1.0
``tnews10_predict.json``). LCQMC, XNLI and INEWS are not CLUE 1.x tasks: they get the same
JSON-lines form with the test file's id (or line index). The 2019 leaderboard took
``<dataset>_predict.txt``: one label per line in test-file order, no ids. All writes are atomic.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence

from autoft import atomic
from autoft.data.tasks import Task
from autoft.errors import AutoftError, where


def _json_id(guid: str):
    # CLUE's test ids are integers; keep other ids (INEWS' hex ids) as strings.
    return int(guid) if guid.isdigit() else guid


def json_name(task: Task) -> str:
    return f"{task.submission_stem}_predict.json"


def zip_name(task: Task) -> str:
    return f"{task.submission_stem}_predict.zip"


def legacy_name(task: Task) -> str:
    return f"{task.name}_predict.txt"


def _check_lengths(task: Task, guids: Sequence[str], labels: Sequence[str]) -> None:
    if len(guids) != len(labels):
        raise AutoftError(f"submission: expected one label per id ({len(guids)} ids), found {len(labels)} labels")
    unknown = sorted(set(labels) - set(task.labels))
    if unknown:
        raise AutoftError(f"submission: expected labels in {{{', '.join(task.labels)}}}, found {', '.join(map(repr, unknown[:5]))}")


def write_submission(task: Task, guids: Sequence[str], label_strings: Sequence[str], out_dir) -> List[Path]:
    """Write ``<stem>_predict.json`` (JSON lines, test order) and ``<stem>_predict.zip``
    holding it at the zip's root, as the CLUE leaderboard takes it. Returns both paths."""
    _check_lengths(task, guids, label_strings)
    out = Path(out_dir)
    lines = []
    for guid, label in zip(guids, label_strings):
        row = {"id": _json_id(str(guid)), "label": label}
        desc = task.label_desc(label)
        if desc is not None:
            row["label_desc"] = desc
        lines.append(json.dumps(row, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    json_path = out / json_name(task)
    atomic.write_bytes(json_path, data)
    zip_path = out / zip_name(task)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        # A fixed timestamp keeps the zip byte-identical for identical predictions.
        info = zipfile.ZipInfo(json_path.name, date_time=(2019, 11, 27, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)
    atomic.write_bytes(zip_path, buf.getvalue())
    return [json_path, zip_path]


def write_legacy(task: Task, label_strings: Sequence[str], out_dir) -> Path:
    """Write ``<dataset>_predict.txt``: one label per line in test-file order (2019 format)."""
    _check_lengths(task, list(range(len(label_strings))), label_strings)
    path = Path(out_dir) / legacy_name(task)
    atomic.write_bytes(path, "".join(f"{label}\n" for label in label_strings).encode("utf-8"))
    return path


def check_submission(task: Task, path) -> int:
    """Validate a submission file (.json lines, .zip of it, or legacy .txt) against the task's
    test split: file name, count, ids in test order, labels in the label set.
    Returns the number of predictions; raises AutoftError naming file:line otherwise."""
    path = Path(path)
    test = task.read("test")
    if path.suffix == ".zip":
        expected = json_name(task)
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if names != [expected]:
                raise AutoftError(f"{path}: expected the zip to hold exactly {expected}, found {names}")
            return _check_json_lines(task, f"{path}!{expected}", z.read(expected).decode("utf-8"), test)
    if path.suffix == ".json":
        if path.name != json_name(task):
            raise AutoftError(f"{path}: expected the file name {json_name(task)}, found {path.name}")
        return _check_json_lines(task, str(path), path.read_text(encoding="utf-8"), test)
    if path.name != legacy_name(task):
        raise AutoftError(f"{path}: expected the file name {legacy_name(task)} or {json_name(task)}, found {path.name}")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, label in enumerate(lines, 1):
        if label not in task.labels:
            raise AutoftError(f"{where(path, number)}: expected a label in {{{', '.join(task.labels)}}}, found {label!r}")
    if len(lines) != len(test):
        raise AutoftError(f"{path}: expected {len(test)} predictions (one per test example), found {len(lines)}")
    return len(lines)


def _check_json_lines(task: Task, name: str, text: str, test) -> int:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AutoftError(f"{name}:{number}: expected a JSON object, found invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "id" not in row or "label" not in row:
            raise AutoftError(f"{name}:{number}: expected an object with \"id\" and \"label\", found {line[:80]!r}")
        if number <= len(test):
            want: Optional[object] = _json_id(test[number - 1].guid)
            if row["id"] != want:
                raise AutoftError(f"{name}:{number}: expected id {want!r} (test order), found {row['id']!r}")
        if row["label"] not in task.labels:
            raise AutoftError(f"{name}:{number}: expected a label in {{{', '.join(task.labels)}}}, found {row['label']!r}")
    if len(lines) != len(test):
        raise AutoftError(f"{name}: expected {len(test)} predictions (one per test example), found {len(lines)}")
    return len(lines)
