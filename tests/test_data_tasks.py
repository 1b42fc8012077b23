"""Readers on small files in each real layout, with the quirks real files have."""

import json
import logging

import pytest

from autoft.data import load_task
from autoft.data.tasks import TNEWS_LABELS
from autoft.errors import AutoftError

BOM = "\ufeff"


def write(path, text, newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


# -- TNEWS ---------------------------------------------------------------------------------
TNEWS_2019 = (
    BOM + "6552431613437805063_!_102_!_news_entertainment_!_谢娜为李浩菲澄清网络谣言_!_谢娜,李浩菲\n"
    "6553372585924346380_!_106_!_news_house_!_楼市\"新政\"来了_!_\n"
    "6553379289042240002_!_116_!_news_game_!_王者荣耀新英雄\n"  # keywords field absent
    "6553081102289043720_!_100_!_news_story_!_  _!_故事\n"  # empty title
    "\n"
)


def test_tnews_2019_layout_with_quirks(tmp_path, caplog):
    for split in ("train", "dev", "test"):
        write(tmp_path / f"toutiao_category_{split}.txt", TNEWS_2019, newline="\r\n")
    task = load_task("TNEWS", tmp_path)
    assert task.layout == "2019" and task.submission_stem == "tnews"
    assert task.labels == TNEWS_LABELS and len(task.labels) == 15 and "105" not in task.labels
    with caplog.at_level(logging.INFO, logger="autoft.data"):
        train = task.read("train")
    assert [e.guid for e in train] == ["6552431613437805063", "6553372585924346380", "6553379289042240002", "6553081102289043720"]
    assert [e.label for e in train] == ["102", "106", "116", "100"]
    assert [task.labels.index(e.label) for e in train] == [2, 5, 14, 0]
    assert train[1].text_a == '楼市"新政"来了' and train[0].text_b is None and train[3].text_a == ""
    assert task.has_labels("test")
    assert task.quirks["train"] == {
        "UTF-8 BOM": 1, "Windows line ends": 5, "blank lines": 1, "lines without keywords": 1,
        'lines with " characters (kept as text)': 1, "empty titles": 1,
    }  # fmt: skip
    summaries = [r.getMessage() for r in caplog.records if "tnews train" in r.getMessage()]
    assert len(summaries) == 1 and "1 lines without keywords" in summaries[0] and "1 UTF-8 BOM" in summaries[0]


def test_tnews_clue_layout_detected_and_unlabeled_test(tmp_path):
    rows = [
        {"label": "102", "label_desc": "news_entertainment", "sentence": "江疏影甜甜圈自拍", "keywords": "江疏影"},
        {"label": "110", "label_desc": "news_military", "sentence": "以色列大规模空袭"},
    ]
    write(tmp_path / "train.json", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write(tmp_path / "dev.json", json.dumps(rows[0], ensure_ascii=False) + "\n")
    write(tmp_path / "test.json", '{"id": 0, "sentence": "第一条", "keywords": ""}\n{"id": 1, "sentence": "第二条", "keywords": ""}\n')
    write(tmp_path / "test1.0.json", "")
    task = load_task("tnews", tmp_path)
    assert task.layout == "clue" and task.submission_stem == "tnews11"
    train = task.read("train")
    assert [(e.guid, e.text_a, e.label) for e in train] == [("0", "江疏影甜甜圈自拍", "102"), ("1", "以色列大规模空袭", "110")]
    assert task.quirks["train"]["lines without keywords"] == 1
    assert task.has_labels("train") and not task.has_labels("test")
    assert [e.guid for e in task.read("test")] == ["0", "1"]
    (tmp_path / "test1.0.json").unlink()
    assert load_task("tnews", tmp_path).submission_stem == "tnews10"


# -- LCQMC ---------------------------------------------------------------------------------
def test_lcqmc_paddlehub_tsv_skips_header_in_every_split(tmp_path):
    body = "text_a\ttext_b\tlabel\n喜欢打篮球的男生喜欢什么样的女生\t爱打篮球的男生喜欢什么样的女生\t1\n我手机丢了\t我想换个手机\t0\n"
    for split in ("train", "dev", "test"):
        write(tmp_path / f"{split}.tsv", body)
    task = load_task("lcqmc", tmp_path)
    for split in ("train", "dev", "test"):
        examples = task.read(split)
        assert [(e.guid, e.label) for e in examples] == [("0", "1"), ("1", "0")]
    assert task.read("dev")[1].text_b == "我想换个手机"


def test_lcqmc_chineseglue_txt_without_header_and_two_column_test(tmp_path):
    write(tmp_path / "train.txt", '他说"好的"\t好\t1\n问题\t答案\t0\n\n')
    write(tmp_path / "dev.txt", "一\t二\t0\n")
    write(tmp_path / "test.txt", "第一句\t第二句\n再一句\t又一句\n")
    task = load_task("lcqmc", tmp_path)
    assert task.file_name("train") == "train.txt"
    train = task.read("train")
    assert len(train) == 2 and train[0].text_a == '他说"好的"'  # quotes are text, not quoting
    assert task.quirks["train"]["blank lines"] == 1
    test = task.read("test")
    assert [(e.text_a, e.text_b, e.label) for e in test] == [("第一句", "第二句", None), ("再一句", "又一句", None)]
    assert not task.has_labels("test")


# -- XNLI / INEWS --------------------------------------------------------------------------
def test_xnli_zh_reads_from_the_xnli_lan_dir_and_maps_contradictory(tmp_path):
    zh = tmp_path / "XNLI-lan" / "zh"
    head = "premise\thypothesis\tlabel\n"
    write(zh / "zh_train.tsv", head + "他来了\t他没来\tcontradictory\n他来了\t有人来了\tentailment\n你好\t再见\tneutral\n")
    write(zh / "zh_dev.tsv", head + "他来了\t他没来\tcontradiction\n")
    write(zh / "zh_test.tsv", head + "他来了\t他没来\tcontradiction\n")
    task = load_task("xnli", tmp_path / "XNLI-lan")
    assert task.labels == ["neutral", "contradiction", "entailment"]
    assert [task.labels.index(e.label) for e in task.read("train")] == [1, 2, 0]
    assert task.quirks["train"] == {'"contradictory" labels read as "contradiction"': 1}


def test_inews_header_only_in_train(tmp_path):
    hid = "0123456789abcdef0123456789abcdef"
    write(tmp_path / "train.txt", f"label_!_id_!_title_!_content\n2_!_{hid}_!_好消息_!_内容很长\n0_!_{hid}_!_坏消息_!_\n")
    write(tmp_path / "dev.txt", f"1_!_{hid}_!_一般_!_正文\n")
    write(tmp_path / "test.txt", f"1_!_{hid}_!_一般_!_正文\n0_!_{hid}_!_差_!_正文二\n")
    task = load_task("inews", tmp_path)
    train = task.read("train")
    assert [(e.guid, e.text_a, e.text_b, e.label) for e in train] == [(hid, "好消息", "内容很长", "2"), (hid, "坏消息", "", "0")]
    assert len(task.read("dev")) == 1 and len(task.read("test")) == 2  # first dev/test line is data
    assert task.has_labels("test") and task.quirks["train"] == {"empty contents": 1}


# -- custom --------------------------------------------------------------------------------
def test_custom_tsv_header_optional_labels_first_seen(tmp_path):
    write(tmp_path / "train.tsv", "pos\t好\nneg\t差\npos\t不错\n")
    write(tmp_path / "dev.tsv", "label\ttext_a\nneg\t坏\n")
    write(tmp_path / "test.tsv", "id\ttext_a\nq7\t还行\n")
    task = load_task("custom", tmp_path)
    assert task.labels == ["pos", "neg"]
    assert [(e.label, e.text_a) for e in task.read("train")] == [("pos", "好"), ("neg", "差"), ("pos", "不错")]
    assert task.read("dev")[0].label == "neg"
    assert [(e.guid, e.label) for e in task.read("test")] == [("q7", None)]


def test_custom_jsonl_pairs_and_labels_txt_order(tmp_path):
    write(tmp_path / "labels.txt", "b\na\n")
    write(tmp_path / "train.jsonl", '{"label": "a", "sentence": "一", "sentence2": "二"}\n{"label": "b", "sentence": "三", "sentence2": "四"}\n')
    write(tmp_path / "dev.jsonl", '{"label": "b", "sentence": "五", "sentence2": "六", "id": 9}\n')
    write(tmp_path / "test.jsonl", '{"id": 3, "sentence": "七", "sentence2": "八"}\n')
    task = load_task("custom", tmp_path)
    assert task.labels == ["b", "a"]
    assert [(e.text_a, e.text_b, e.label) for e in task.read("train")] == [("一", "二", "a"), ("三", "四", "b")]
    assert task.read("dev")[0].guid == "9" and task.read("test")[0].guid == "3"
    assert not task.has_labels("test")


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task_name, files, split, message",
    [
        ("tnews", {"toutiao_category_train.txt": "1_!_102\n"}, "train", r"toutiao_category_train.txt:1: expected 5 '_!_'-separated fields .*found 2"),
        ("tnews", {"toutiao_category_train.txt": "1_!_102_!_x_!_好\n2_!_105_!_x_!_好\n"}, "train", r"toutiao_category_train.txt:2: expected a label in \{100, .*found '105'"),
        ("tnews", {"train.json": '{"label": "102", "sentence": "好"}\n{"label": "102", "sentence": "好"\n'}, "train", r"train.json:2: expected a JSON object, found invalid JSON"),
        ("tnews", {"train.json": '{"label": "102"}\n'}, "train", r"train.json:1: expected a \"sentence\" string, found None"),
        ("lcqmc", {"train.tsv": "text_a\ttext_b\tlabel\n好\t好\t1\n好\t1\n"}, "train", r"train.tsv:3: expected 3 TAB-separated fields .*found 2"),
        ("lcqmc", {"train.tsv": "好\t好\t2\n"}, "train", r"train.tsv:1: expected a label in \{0, 1\}, found '2'"),
        ("xnli", {"zh_train.tsv": "a\tb\tneutral\nc\td\n"}, "train", r"zh_train.tsv:2: expected 3 TAB-separated fields \(premise TAB hypothesis TAB label\), found 2"),
        ("inews", {"train.txt": "1_!_id_!_title\n"}, "train", r"train.txt:1: expected 4 '_!_'-separated fields"),
        ("custom", {"train.tsv": "pos\t好\nneg\t  \n"}, "train", r"train.tsv:2: expected a non-empty text_a, found an empty text"),
        ("custom", {"train.tsv": "pos\t好\n", "dev.tsv": "pos\t好\nmaybe\t嗯\n"}, "dev", r"dev.tsv:2: expected a label in \{pos\}, found 'maybe'"),
        ("custom", {"train.tsv": "pos\t好\tx\textra\n"}, "train", r"train.tsv:1: expected 2 or 3 TAB-separated fields .*found 4"),
        ("custom", {"train.jsonl": '{"label": "a", "sentence": ""}\n'}, "train", r"train.jsonl:1: expected a non-empty \"sentence\" string, found an empty text"),
        ("custom", {"train.jsonl": '{"sentence": "好"}\n'}, "train", r"train.jsonl:1: expected a \"label\" key in the train split"),
        ("custom", {"train.jsonl": "[1, 2]\n"}, "train", r"train.jsonl:1: expected a JSON object, found list"),
        ("lcqmc", {"train.tsv": None}, "train", r"train.tsv:2: expected UTF-8 text, found the byte 0xff"),
    ],
)
def test_malformed_input_names_file_line_expected_found(tmp_path, task_name, files, split, message):
    for name, text in files.items():
        if text is None:
            (tmp_path / name).write_bytes("好\t好\t1\n".encode() + b"\xff\t\xfe\t1\n")
        else:
            write(tmp_path / name, text)
    task = load_task(task_name, tmp_path)
    with pytest.raises(AutoftError, match=message):
        if task_name == "custom":
            task.labels  # noqa: B018 -- labels come from reading train
        task.read(split)


def test_missing_files_listed_with_where_to_get_them(tmp_path):
    with pytest.raises(AutoftError) as info:
        load_task("lcqmc", tmp_path / "nowhere")
    msg = str(info.value)
    assert "train.tsv, dev.tsv, test.tsv" in msg and "does not exist" in msg and "PaddleHub" in msg and "--data_dir" in msg
    write(tmp_path / "toutiao_category_train.txt", "1_!_102_!_x_!_好_!_\n")
    task = load_task("tnews", tmp_path)
    with pytest.raises(AutoftError, match=r"missing toutiao_category_dev.txt; expected files .*found toutiao_category_train.txt"):
        task.read("dev")
    with pytest.raises(AutoftError, match=r"--dataset: expected one of .*found 'mnli'"):
        load_task("mnli")


def test_data_dir_defaults_to_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOFT_HOME", str(tmp_path))
    write(tmp_path / "data" / "inews" / "train.txt", "1_!_a_!_标题_!_正文\n")
    assert load_task("inews").data_dir == tmp_path / "data" / "inews"
