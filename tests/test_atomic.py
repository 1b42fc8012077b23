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


@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


def _modes(d):
    return {p.name: oct(p.stat().st_mode & 0o777) for p in [d, *d.iterdir()]}


def test_current_umask_reads_without_changing(umask_077):
    assert atomic.current_umask() == 0o077 and atomic.current_umask() == 0o077


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_published_model_files_keep_the_umask_like_their_siblings(tmp_path, mask, file_mode, dir_mode):
    """safetensors writes 0600; a saved model's files must all get the umask's mode."""
    from autoft.checkpoint import save_pretrained
    from autoft.model import BertConfig, BertModel

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n好\n", encoding="utf-8")
    config = BertConfig(vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    old = os.umask(mask)
    try:
        out = save_pretrained(BertModel(config), tmp_path / "model", vocab)
        scratch = tmp_path / "scratch"
        scratch.mkdir(mode=0o700)  # like tempfile.mkdtemp
        (scratch / "w.bin").write_bytes(b"x")
        os.chmod(scratch / "w.bin", 0o600)
        (scratch / "run.sh").write_bytes(b"#!/bin/sh\n")
        os.chmod(scratch / "run.sh", 0o700)
        copied = atomic.copy_dir(scratch, tmp_path / "copy")
    finally:
        os.umask(old)
    modes = _modes(out)
    assert modes.pop("model") == oct(dir_mode)
    assert set(modes) >= {"model.safetensors", "config.json", "vocab.txt"}
    assert set(modes.values()) == {oct(file_mode)}, modes
    assert _modes(copied) == {"copy": oct(dir_mode), "w.bin": oct(file_mode), "run.sh": oct(dir_mode)}
