"""`autoft convert`: every foreign format to autoft's format, from the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autoft.errors import AutoftError

pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_foreign import (  # noqa: E402  (after the importorskip guards)
    IDS,
    MASK,
    SHAPE,
    TYPES,
    assert_same_outputs,
    autoft_outputs,
    hf_model,
    hf_outputs,
    write_hf_bin,
    write_hf_safetensors,
    write_paddlehub1,
    write_paddlenlp,
    write_vocab,
)

AUTOFT = Path(sys.executable).parent / "autoft"  # the venv's console script


def run_convert(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(AUTOFT), "convert", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bin", "paddlenlp", "paddlehub1"])
def test_convert_command_line_each_format(kind, tmp_path):
    from autoft.checkpoint import load_pretrained
    from autoft.weights import detect_format

    eps = 1e-5 if kind == "paddlehub1" else 1e-12
    ref = hf_model(layer_norm_eps=eps)
    src = {"bin": lambda: write_hf_bin(ref, tmp_path / "hf"),
           "paddlenlp": lambda: write_paddlenlp(ref, tmp_path / "nlp"),
           "paddlehub1": lambda: write_paddlehub1(ref, tmp_path)}[kind]()
    dst = tmp_path / "converted"
    proc = run_convert(str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    fmt = {"bin": "hf"}.get(kind, kind)
    n_params = sum(p.numel() for p in ref.bert.parameters())
    assert f"(format: {fmt})" in proc.stdout
    assert f"{n_params:,} parameters" in proc.stdout
    if kind == "bin":
        assert "unused tensors): cls." in proc.stdout
    assert detect_format(dst) == "autoft"
    assert sorted(p.name for p in dst.iterdir()) == ["config.json", "model.safetensors", "tokenizer_config.json",
                                                     "vocab.txt"]
    assert_same_outputs(autoft_outputs(load_pretrained(dst)), hf_outputs(ref))


@pytest.mark.slow
def test_convert_command_line_errors_exit_2(tmp_path):
    proc = run_convert(str(tmp_path / "nothing"), str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "nothing" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_convert_safetensors_by_name_and_refuses_nonempty_dst(tmp_path, capsys):
    from autoft.checkpoint import load_pretrained
    from autoft.convert import cli

    ref = hf_model()
    write_hf_safetensors(ref, tmp_path / "models" / "tiny-bert")
    dst = tmp_path / "out"
    assert cli(["tiny-bert", str(dst), "--model_dir", str(tmp_path / "models" / "tiny-bert")]) == 0
    out = capsys.readouterr().out
    assert "(format: hf)" in out and "not converted: none" in out
    assert_same_outputs(autoft_outputs(load_pretrained(dst)), hf_outputs(ref))
    with pytest.raises(AutoftError, match=r"out: output directory exists and is not empty; choose a new directory "
                                          r"or pass --force"):
        cli([str(tmp_path / "models" / "tiny-bert"), str(dst)])
    assert cli([str(dst), str(dst.with_name("again")), "--force"]) == 0  # autoft -> autoft re-save
    assert "(format: autoft)" in capsys.readouterr().out


def test_convert_paddlehub_classifier_head_with_labels_file(tmp_path, capsys):
    import paddle

    from autoft.checkpoint import load_classifier
    from autoft.convert import cli

    ref = hf_model(layer_norm_eps=1e-5)
    rng = np.random.default_rng(3)
    head = (rng.standard_normal((32, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32))
    module = write_paddlehub1(ref, tmp_path, classifier=head)
    (module / "labels.txt").write_text("news_sport\nnews_tech\nnews_game\n", encoding="utf-8")
    dst = tmp_path / "clf"
    assert cli([str(module), str(dst)]) == 0
    assert "classifier head: 3 labels (news_sport, news_tech, news_game)" in capsys.readouterr().out
    assert json.loads((dst / "labels.json").read_text()) == ["news_sport", "news_tech", "news_game"]
    model = load_classifier(dst)
    model.eval()
    with paddle.no_grad():
        logits = model(paddle.to_tensor(np.array([[2, 10, 3]])), attention_mask=paddle.to_tensor(np.array([[1, 1, 1]])))
    _, pooled = hf_outputs_single(ref, [[2, 10, 3]])
    np.testing.assert_allclose(logits.numpy(), pooled @ head[0] + head[1], atol=1e-5)
    # A labels file with the wrong count is named.
    (module / "labels.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(AutoftError, match=rf"{module / 'labels.txt'}: expected 3 labels \(the classifier head has 3 "
                                          r"outputs\), found 2"):
        cli([str(module), str(tmp_path / "clf2")])
    (module / "labels.txt").unlink()
    assert cli([str(module), str(tmp_path / "clf3")]) == 0
    assert json.loads((tmp_path / "clf3" / "labels.json").read_text()) == ["0", "1", "2"]


def hf_outputs_single(ref, ids):
    import torch

    with torch.no_grad():
        out = ref.bert(torch.tensor(ids))
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


def test_convert_hf_sequence_classifier_keeps_head_and_id2label(tmp_path, capsys):
    import paddle
    import torch
    import transformers

    from autoft.checkpoint import load_classifier
    from autoft.convert import cli

    torch.manual_seed(4)
    config = transformers.BertConfig(**SHAPE, num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"},
                                     label2id={"neg": 0, "neu": 1, "pos": 2})
    ref = transformers.BertForSequenceClassification(config).eval()
    ref.save_pretrained(tmp_path / "hf_clf")
    write_vocab(tmp_path / "hf_clf" / "vocab.txt")
    assert cli([str(tmp_path / "hf_clf"), str(tmp_path / "out")]) == 0
    assert "classifier head: 3 labels (neg, neu, pos)" in capsys.readouterr().out
    model = load_classifier(tmp_path / "out")
    with torch.no_grad():
        want = ref(torch.tensor(IDS), token_type_ids=torch.tensor(TYPES), attention_mask=torch.tensor(MASK)).logits
    with paddle.no_grad():
        got = model(paddle.to_tensor(IDS), paddle.to_tensor(TYPES), paddle.to_tensor(MASK))
    assert np.abs(got.numpy() - want.numpy()).max() <= 1e-5
