import json
import os

import pytest

from autoft import atomic


def test_write_json_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "state.json"
    atomic.write_json(p, {"a": 1, "文": "字"})
    atomic.write_json(p, {"b": 2})
    assert json.loads(p.read_text(encoding="utf-8")) == {"b": 2}
    assert sorted(os.listdir(p.parent)) == ["state.json"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "x.txt"
    atomic.write_text(p, "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_text(p, "new")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_copy_dir_replaces_existing_target(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a").write_text("A")
    dst.mkdir()
    (dst / "stale").write_text("S")
    atomic.copy_dir(src, dst)
    assert sorted(os.listdir(dst)) == ["a"]
    assert sorted(os.listdir(tmp_path)) == ["dst", "src"]
