"""Header lines as the real files have them (PaddleHub 1.4's per-task rule), and custom-data
edge cases: an empty split named as such, labels taken from a checkpoint."""

import json

import pytest

from autoft.data import load_task
from autoft.data.tasks import HEADER_ABSENT, HEADER_SKIPPED
from autoft.errors import AutoftError

HEX = "0123456789abcdef0123456789abcdef"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read_all(task):
    return {split: task.read(split) for split in ("train", "dev", "test")}


def test_xnli_real_header_premise_hypo_label_in_every_split(tmp_path):
    zh = tmp_path / "XNLI-lan" / "zh"
    head = "premise\thypo\tlabel\n"  # exactly as PaddleHub/ERNIE's XNLI zh files start
    write(zh / "zh_train.tsv", head + "从 概念 上 看 ,\t产品 和 地理 是 什么\tneutral\n他 来 了\t他 没 来\tcontradictory\n")
    write(zh / "zh_dev.tsv", head + "他 来 了\t有人 来 了\tentailment\n")
    write(zh / "zh_test.tsv", head + "他 来 了\t他 没 来\tcontradiction\n")
    task = load_task("xnli", tmp_path / "XNLI-lan")
    splits = read_all(task)
    assert [e.label for e in splits["train"]] == ["neutral", "contradiction"]
    assert [(e.text_a, e.label) for e in splits["dev"]] == [("他 来 了", "entailment")]
    assert len(splits["test"]) == 1
    assert HEADER_SKIPPED not in task.quirks["dev"] and HEADER_ABSENT not in task.quirks["test"]


def test_xnli_copy_without_header_keeps_line_1_and_counts_it(tmp_path):
    for split in ("train", "dev", "test"):
        write(tmp_path / f"zh_{split}.tsv", "他来了\t他没来\tcontradiction\n你好\t再见\tneutral\n")
    task = load_task("xnli", tmp_path)
    assert len(task.read("train")) == 2  # PaddleHub would have dropped line 1 here
    assert task.quirks["train"] == {HEADER_ABSENT: 1}


def test_lcqmc_both_packagings_and_an_unknown_header_name(tmp_path):
    hub, glue = tmp_path / "hub", tmp_path / "glue"
    for split in ("train", "dev", "test"):
        write(hub / f"{split}.tsv", "text_a\ttext_b\tlabel\n我手机丢了\t我想换个手机\t0\n")
    write(hub / "test.tsv", "text_a\ttext_b\n我手机丢了\t我想换个手机\n")  # a later copy's 2-column test
    task = load_task("lcqmc", hub)
    splits = read_all(task)
    assert [len(v) for v in splits.values()] == [1, 1, 1] and splits["test"][0].label is None
    assert not any(task.quirks.values())
    write(glue / "train.txt", "query1\tquery2\tis_same\n好\t好\t1\n")  # a header the readers never saw
    write(glue / "dev.txt", "好\t好\t1\n")
    write(glue / "test.txt", "好\t好\n")
    task = load_task("lcqmc", glue)
    splits = read_all(task)
    assert [len(v) for v in splits.values()] == [1, 1, 1]
    assert task.quirks["train"] == {HEADER_SKIPPED: 1} and not task.quirks["dev"]


def test_inews_header_in_train_only_and_tolerated_elsewhere(tmp_path):
    head = "label_!_id_!_title_!_content\n"
    write(tmp_path / "train.txt", head + f"2_!_{HEX}_!_好消息_!_内容\n")
    write(tmp_path / "dev.txt", f"1_!_{HEX}_!_一般_!_正文\n")
    write(tmp_path / "test.txt", head + f"0_!_{HEX}_!_差_!_正文\n")
    task = load_task("inews", tmp_path)
    splits = read_all(task)
    assert [len(v) for v in splits.values()] == [1, 1, 1]
    assert task.quirks["train"] == {} and task.quirks["dev"] == {} and task.quirks["test"] == {HEADER_SKIPPED: 1}
    write(tmp_path / "train.txt", f"2_!_{HEX}_!_好消息_!_内容\n")
    task = load_task("inews", tmp_path)
    assert len(task.read("train")) == 1 and task.quirks["train"] == {HEADER_ABSENT: 1}


def test_tnews_both_layouts_have_no_header_and_one_is_tolerated(tmp_path):
    old, clue = tmp_path / "old", tmp_path / "clue"
    line = "6552431613437805063_!_102_!_news_entertainment_!_谢娜为李浩菲澄清网络谣言_!_谢娜\n"
    write(old / "toutiao_category_train.txt", "news_id_!_label_code_!_label_name_!_title_!_keywords\n" + line)
    for split in ("dev", "test"):
        write(old / f"toutiao_category_{split}.txt", line)
    task = load_task("tnews", old)
    assert [len(v) for v in read_all(task).values()] == [1, 1, 1]
    assert task.quirks["train"] == {HEADER_SKIPPED: 1} and task.quirks["dev"] == {}
    row = {"label": "102", "label_desc": "news_entertainment", "sentence": "江疏影甜甜圈自拍", "keywords": "江疏影"}
    for split in ("train", "dev"):
        write(clue / f"{split}.json", json.dumps(row, ensure_ascii=False) + "\n")
    write(clue / "test.json", '{"id": 0, "sentence": "第一条", "keywords": ""}\n')
    task = load_task("tnews", clue)
    assert [len(v) for v in read_all(task).values()] == [1, 1, 1] and not any(task.quirks.values())


def test_a_first_line_that_is_neither_data_nor_a_header_stays_an_error(tmp_path):
    write(tmp_path / "train.txt", "好\t好\t7\n")
    for split in ("dev", "test"):
        write(tmp_path / f"{split}.txt", "好\t好\t1\n")
    with pytest.raises(AutoftError, match=r"train.txt:1: expected a label in \{0, 1\}, found '7'"):
        load_task("lcqmc", tmp_path).read("train")


# -- custom data -----------------------------------------------------------------------------
@pytest.mark.parametrize("train", ["", "label\ttext_a\n", "\n\n"])
def test_an_empty_custom_train_split_is_named_wherever_it_is_read(tmp_path, train):
    write(tmp_path / "train.tsv", train)
    write(tmp_path / "dev.tsv", "label\ttext_a\nneg\t差\n")
    message = r"train.tsv: the train split is empty: expected at least one example, found none"
    for split in ("dev", "train"):
        with pytest.raises(AutoftError, match=message):
            load_task("custom", tmp_path).read(split)


def test_custom_header_with_other_column_names_is_not_a_label(tmp_path):
    write(tmp_path / "train.tsv", "label\tsentence\npos\t好\nneg\t差\n")
    write(tmp_path / "dev.tsv", "category\ttext\npos\t好\n")  # reads as a header, fails as an example
    task = load_task("custom", tmp_path)
    assert task.labels == ["pos", "neg"]
    assert [e.text_a for e in task.read("train")] == ["好", "差"] and [e.label for e in task.read("dev")] == ["pos"]
    # A custom header is optional; one seen only by the loose rule is counted (a mistyped example?).
    assert task.quirks["train"] == {} and task.quirks["dev"] == {HEADER_SKIPPED: 1}


def test_custom_predicts_with_the_checkpoints_labels_and_only_the_test_file(tmp_path):
    write(tmp_path / "test.tsv", "id\ttext_a\nq1\t还行\n")
    task = load_task("custom", tmp_path)
    task.adopt_labels(["neg", "pos"], "checkpoint labels.json")
    assert task.labels == ["neg", "pos"] and [e.guid for e in task.read("test")] == ["q1"]
    write(tmp_path / "labels.txt", "pos\nneg\n")
    with pytest.raises(AutoftError, match=r"labels.txt: the labels \['pos', 'neg'\] differ from checkpoint labels.json's"):
        load_task("custom", tmp_path).adopt_labels(["neg", "pos"], "checkpoint labels.json")
