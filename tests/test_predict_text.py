"""Predicting your own text: the Python API (autoft.Classifier) and predict.py --input, on a
tiny random classifier saved by the test; predict.py --dataset custom with only the test file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autoft.errors import AutoftError

ROOT = Path(__file__).resolve().parents[1]
CHARS = "好棒赞美爱喜差坏烂糟恨怒的了是我"
SHORT = "不好"  # one [UNK] and one known character: [CLS] 不 好 [SEP]
LONG = "好棒赞美爱喜的了是我差坏烂糟恨怒的了是我好棒"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import paddle

    from autoft.checkpoint import save_pretrained
    from autoft.model import BertConfig, BertForSequenceClassification

    base = tmp_path_factory.mktemp("clf")
    vocab = base / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS]) + "\n", encoding="utf-8")
    paddle.seed(3)
    config = BertConfig(vocab_size=5 + len(CHARS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=40)
    model = BertForSequenceClassification(config, ["neg", "pos", "mid"])
    # Random weights put every text near 1/3 each: scale the head so texts differ clearly.
    model.classifier.weight.set_value(model.classifier.weight.numpy() * 200)
    return save_pretrained(model, base / "out" / "best_model", vocab, extra={"hparams": {"max_seq_len": 24}}).parent


def _run(*args, stdin=None, timeout=180):
    env = dict(os.environ)
    return subprocess.run([sys.executable, str(ROOT / "predict.py"), *map(str, args)], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=timeout)


# -- the Python API --------------------------------------------------------------------------
def test_classifier_predicts_labels_and_probabilities_in_input_order(model_dir):
    from autoft import Classifier, Predictions

    clf = Classifier.load(model_dir)
    assert clf.labels == ["neg", "pos", "mid"] and clf.max_seq_len == 24  # trained value from train_state.json
    texts = [LONG, SHORT, "好", "坏了坏了"]
    result = clf.predict(texts, batch_size=3)
    assert isinstance(result, Predictions) and len(result) == 4 and result.classes == clf.labels
    assert result.probabilities.shape == (4, 3) and result.probabilities.dtype == np.float32
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert result.labels == [clf.labels[i] for i in result.probabilities.argmax(axis=1)]
    one_by_one = [clf.predict(t).probabilities[0] for t in texts]  # a str is one text
    np.testing.assert_allclose(result.probabilities, np.stack(one_by_one), atol=1e-5)
    record = result.records()[1]
    assert set(record) == {"label", "probabilities"} and list(record["probabilities"]) == clf.labels


def test_a_sentence_gets_the_same_probabilities_alone_and_padded_in_a_batch(model_dir):
    import paddle

    from autoft import Classifier

    clf = Classifier.load(model_dir)
    alone = clf.predict([SHORT]).probabilities[0]
    batch = clf.predict([LONG, SHORT, LONG + LONG], batch_size=8)  # SHORT padded to 24 tokens
    np.testing.assert_allclose(batch.probabilities[1], alone, atol=1e-5)
    # Meaningful: the same padded batch with an all-ones mask (padding attended) moves SHORT's logits.
    feats = clf.encode([LONG, SHORT])
    ids = np.zeros((2, int(feats.lengths.max())), dtype=np.int64)
    for row, x in enumerate(feats.input_ids):
        ids[row, : len(x)] = x
    with paddle.no_grad():
        t = paddle.to_tensor(ids)
        unmasked = clf.model(t, paddle.zeros_like(t), paddle.ones_like(t)).numpy()[1]
    assert np.abs(clf.predictions(unmasked[None]).probabilities[0] - alone).max() > 1e-3


def test_pairs_and_argument_errors(model_dir):
    from autoft import Classifier

    clf = Classifier.load(model_dir, max_seq_len=8)
    pairs = clf.predict(["好棒", "差"], ["坏", None])
    single = clf.predict(["差"])
    np.testing.assert_allclose(pairs.probabilities[1], single.probabilities[0], atol=1e-5)
    assert not np.allclose(pairs.probabilities[0], clf.predict(["好棒"]).probabilities[0], atol=1e-5)
    with pytest.raises(AutoftError, match=r"texts_b: expected 2 texts \(one per text\), found 1"):
        clf.predict(["好", "差"], ["坏"])
    with pytest.raises(AutoftError, match=r"texts\[1\]: expected a non-empty string, found ' '"):
        clf.predict(["好", " "])
    with pytest.raises(AutoftError, match=r"batch_size: expected an integer >= 1, found 0"):
        clf.predict(["好"], batch_size=0)
    with pytest.raises(AutoftError, match=r"max_seq_len: expected an integer in \[3, 40\] .*found 41"):
        Classifier.load(model_dir, max_seq_len=41)


def test_amp_is_dropped_on_cpu_with_a_warning_and_checked(model_dir, caplog):
    import paddle

    from autoft import Classifier

    if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        pytest.skip("a GPU runs --amp for real (the device check does that)")
    clf = Classifier.load(model_dir, amp="bf16")
    assert not clf.use_amp and "--amp=bf16 ignored on CPU" in caplog.text
    np.testing.assert_array_equal(clf.predict([SHORT]).probabilities, Classifier.load(model_dir).predict([SHORT]).probabilities)
    with pytest.raises(AutoftError, match=r"amp: expected one of none, fp16, bf16, found 'fp8'"):
        Classifier.load(model_dir, amp="fp8")


# -- input files -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("好\n坏\t差\t烂\n", r"in.txt:2: expected one text or text_a TAB text_b, found 3 TAB-separated fields"),
        ("好\n\n坏\t \n", r"in.txt:3: expected a non-empty text on each side of the TAB"),
        ('{"text_a": "好"}\n{"text_a": "好"\n', r"in.txt:2: expected a JSON object, found invalid JSON"),
        ('{"text_a": "好"}\n{"text": "好"}\n', r'in.txt:2: expected a non-empty "text_a" string, found no key \(keys: text\)'),
        ('{"text_a": "好", "text_b": 3}\n', r'in.txt:1: expected a non-empty "text_b" string, found 3'),
        ("\n\n", r"--input .*in.txt: expected at least one text, found none"),
    ],
)
def test_input_format_errors_name_file_and_line(tmp_path, text, message):
    from autoft.predict import read_texts

    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    with pytest.raises(AutoftError, match=message):
        read_texts(str(tmp_path / "in.txt"))


def test_input_formats_read_lines_pairs_and_json_ids(tmp_path):
    from autoft.predict import read_texts

    got = read_texts("-", data="\ufeff好\r\n\n坏\t差\n".encode())
    assert (got.name, got.texts_a, got.texts_b, got.lines) == ("<stdin>", ["好", "坏"], [None, "差"], [1, 3])
    path = tmp_path / "in.jsonl"
    path.write_text('{"text_a": "好", "id": "q1"}\n{"text_a": "坏", "text_b": "差"}\n', encoding="utf-8")
    got = read_texts(str(path))
    assert (got.texts_a, got.texts_b, got.ids) == (["好", "坏"], [None, "差"], ["q1", None])
    assert read_texts(str(path), "text").texts_a[0].startswith('{"text_a"')  # --input_format text


# -- predict.py in a subprocess --------------------------------------------------------------
def test_cli_predicts_stdin_to_stdout_and_a_file_atomically(model_dir, tmp_path):
    from autoft import Classifier

    proc = _run("--checkpoint_dir", model_dir, "--input", "-", stdin=f"{SHORT}\n\n{LONG}\t好\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 3] and all(set(r["probabilities"]) == {"neg", "pos", "mid"} for r in records)
    expected = Classifier.load(model_dir).predict([SHORT, LONG], [None, "好"])
    assert [r["label"] for r in records] == expected.labels
    np.testing.assert_allclose([list(r["probabilities"].values()) for r in records], expected.probabilities, atol=1e-5)
    assert "predicted 2 texts from <stdin> (1 with text_b)" in proc.stderr and SHORT not in proc.stderr

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 7, "text_a": SHORT}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "res" / "out.jsonl"
    proc = _run("--checkpoint_dir", model_dir, "--input", src, "--output", out, "--batch_size", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == "" and f"wrote {out}" in proc.stderr
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record["id"] == 7 and record["label"] == expected.labels[0]
    assert sorted(os.listdir(out.parent)) == ["out.jsonl"]  # no temp file left


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch_size", "0"], "error: --batch_size: expected an integer >= 1, found 0"),
        (["--max_seq_len", "100000"], "error: --max_seq_len: expected an integer in [3, 40]"),
        (["--max_seq_len", "2"], "found 2"),
    ],
)
def test_cli_numeric_flags_are_validated(model_dir, tmp_path, args, message):
    (tmp_path / "in.txt").write_text("好\n", encoding="utf-8")
    proc = _run("--checkpoint_dir", model_dir, "--input", tmp_path / "in.txt", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0  # one line


def test_cli_bad_input_line_and_mode_errors(model_dir, tmp_path):
    bad = tmp_path / "in.txt"
    bad.write_text("好\na\tb\tc\n", encoding="utf-8")
    proc = _run("--checkpoint_dir", model_dir, "--input", bad)
    assert proc.returncode == 2 and f"error: {bad}:2: expected one text or text_a TAB text_b" in proc.stderr
    proc = _run("--checkpoint_dir", model_dir)
    assert proc.returncode == 2 and "--dataset / --input: expected one of them" in proc.stderr


def test_cli_custom_dataset_needs_only_the_test_file(model_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.tsv").write_text(f"id\ttext_a\nq1\t{LONG}\nq2\t{SHORT}\n", encoding="utf-8")
    out = tmp_path / "sub"
    proc = _run("--dataset", "custom", "--data_dir", data, "--checkpoint_dir", model_dir, "--output_dir", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (out / "custom_predict.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and set(lines) <= {"neg", "pos", "mid"}
    assert f"predicted 2 custom test examples from {data / 'test.tsv'}" in proc.stdout
    assert LONG not in proc.stdout and SHORT not in proc.stdout  # counts and paths, not texts
