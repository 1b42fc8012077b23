"""Our checkpoint format: bit-exact round trips, model resolution, and every error message."""

import json
import logging
from pathlib import Path

import numpy as np
import paddle
import pytest

from autoft import checkpoint as C
from autoft.errors import AutoftError
from autoft.model import BertConfig, BertForSequenceClassification, BertModel


def tiny_config(**kw):
    base = dict(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=16,
        layer_norm_eps=1e-5,
    )
    base.update(kw)
    return BertConfig(**base)


def write_vocab(path: Path, n: int) -> Path:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(n - 5)]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def classifier(seed=0, labels=("neg", "pos")):
    paddle.seed(seed)
    return BertForSequenceClassification(tiny_config(), list(labels), dropout=0.25)


def params(m):
    return {n: p.numpy() for n, p in m.named_parameters()}


IDS = np.array([[2, 7, 8, 9, 3, 0], [2, 10, 11, 3, 0, 0]], dtype="int64")
MASK = (IDS != 0).astype("int64")


def test_classifier_round_trip_is_bit_exact(tmp_path):
    m = classifier()
    vocab = write_vocab(tmp_path / "v.txt", 30)
    out = C.save_pretrained(
        m, tmp_path / "ckpt", vocab, do_lower_case=False, extra={"score": np.float32(0.5), "epoch": 2}
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "config.json",
            "model.safetensors",
            "vocab.txt",
            "tokenizer_config.json",
            "labels.json",
            "train_state.json",
        ]
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["autoft_format"] == 1 and cfg["hidden_size"] == 16 and cfg["layer_norm_eps"] == 1e-5
    assert json.loads((out / "labels.json").read_text()) == ["neg", "pos"]
    assert json.loads((out / "tokenizer_config.json").read_text()) == {"do_lower_case": False}
    assert json.loads((out / "train_state.json").read_text()) == {"score": 0.5, "epoch": 2}
    assert (out / "vocab.txt").read_bytes() == vocab.read_bytes()
    # No pickle: the weights are a safetensors file whose header is JSON.
    raw = (out / "model.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert "classifier.weight" in header and "bert.embeddings.word_embeddings.weight" in header

    back = C.load_classifier(out)
    assert back.labels == ["neg", "pos"] and back.dropout == 0.25 and back.config == m.config
    a, b = params(m), params(back)
    assert a.keys() == b.keys()
    for n in a:
        assert a[n].dtype == b[n].dtype and np.array_equal(a[n], b[n]), n
    m.eval()
    ids, mask = paddle.to_tensor(IDS), paddle.to_tensor(MASK)
    np.testing.assert_array_equal(m(ids, attention_mask=mask).numpy(), back(ids, attention_mask=mask).numpy())


def test_encoder_round_trip_and_encoder_from_classifier_dir(tmp_path):
    paddle.seed(1)
    enc = BertModel(tiny_config())
    vocab = write_vocab(tmp_path / "v.txt", 30)
    C.save_pretrained(enc, tmp_path / "enc", vocab)
    assert not (tmp_path / "enc" / "labels.json").exists()
    back = C.load_pretrained(tmp_path / "enc")
    assert isinstance(back, BertModel) and not back.training
    for n, v in params(enc).items():
        assert np.array_equal(v, params(back)[n]), n

    m = classifier(seed=2)
    C.save_pretrained(m, tmp_path / "cls", vocab)
    encoder = C.load_pretrained(str(tmp_path / "cls"))
    assert isinstance(encoder, BertModel)
    for n, v in params(m.bert).items():
        assert np.array_equal(v, params(encoder)[n]), n


def test_save_replaces_an_existing_dir_and_leaves_no_temp(tmp_path):
    vocab = write_vocab(tmp_path / "v.txt", 30)
    out = tmp_path / "best"
    C.save_pretrained(classifier(seed=3), out, vocab, extra={"score": 0.1})
    (out / "stale.txt").write_text("old run")
    m2 = classifier(seed=4, labels=("a", "b"))
    C.save_pretrained(m2, out, vocab)
    assert not (out / "stale.txt").exists() and not (out / "train_state.json").exists()
    assert json.loads((out / "labels.json").read_text()) == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "v.txt"]
    back = C.load_classifier(out)
    for n, v in params(m2).items():
        assert np.array_equal(v, params(back)[n]), n


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    vocab = write_vocab(tmp_path / "v.txt", 30)
    out = tmp_path / "best"
    m = classifier(seed=5)
    C.save_pretrained(m, out, vocab)
    with pytest.raises(TypeError, match="not JSON serializable"):
        C.save_pretrained(classifier(seed=6), out, vocab, extra={"bad": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "v.txt"]
    for n, v in params(m).items():
        assert np.array_equal(v, params(C.load_classifier(out))[n]), n


def test_resolve_model_dir_order(tmp_path, monkeypatch, _isolated_home):
    home_model = _isolated_home / "models" / "tiny-x"
    home_model.mkdir(parents=True)
    assert C.resolve_model_dir("tiny-x") == home_model
    explicit = tmp_path / "mine"
    explicit.mkdir()
    assert C.resolve_model_dir(explicit) == explicit
    assert C.resolve_model_dir("tiny-x", model_dir=explicit) == explicit  # --model_dir beats the home
    assert C.resolve_model_dir(str(home_model), model_dir=explicit) == home_model  # an explicit path wins
    monkeypatch.chdir(tmp_path)
    assert C.resolve_model_dir("mine") == Path("mine")  # a directory of that name in the cwd
    (explicit / "tiny-x").mkdir()
    assert C.resolve_model_dir("tiny-x", model_dir=explicit) == explicit / "tiny-x"


def test_missing_model_error_says_which_files_to_put_where(_isolated_home):
    with pytest.raises(AutoftError) as e:
        C.resolve_model_dir("roberta-wwm-ext-large")
    msg = str(e.value)
    target = _isolated_home / "models" / "roberta-wwm-ext-large"
    assert f"looked in {target}" in msg and "never downloads" in msg and "--model_dir" in msg
    for needed in (
        "model.safetensors",
        "pytorch_model.bin",
        "model_state.pdparams",
        "assets/params/",
        "vocab.txt",
    ):
        assert needed in msg
    with pytest.raises(AutoftError, match="--model_dir /nonexistent/dir: directory not found"):
        C.resolve_model_dir("roberta-wwm-ext-large", model_dir="/nonexistent/dir")
    with pytest.raises(AutoftError, match="nope/model: model directory not found"):
        C.load_pretrained("./nope/model")


def _saved(tmp_path, model=None, name="ckpt"):
    vocab = write_vocab(tmp_path / "v.txt", 30)
    return C.save_pretrained(model or classifier(), tmp_path / name, vocab)


def test_assign_state_refuses_missing_unexpected_and_misshaped_tensors():
    m = BertModel(tiny_config(), init="zeros")
    good = {n: np.ones(p.shape, dtype="float32") for n, p in m.named_parameters()}
    bad = dict(good)
    del bad["encoder.layers.1.ffn_in.bias"]
    bad["cls.predictions.bias"] = np.zeros(30, dtype="float32")
    bad["pooler.dense.weight"] = np.zeros((16, 8), dtype="float32")
    with pytest.raises(AutoftError) as e:
        C.assign_state(m, bad, "weights.bin")
    msg = str(e.value)
    assert msg.startswith("weights.bin: cannot load into BertModel")
    assert "missing tensors encoder.layers.1.ffn_in.bias (expected [20])" in msg
    assert "unexpected tensors cls.predictions.bias" in msg
    assert "tensor pooler.dense.weight: expected shape [16, 16], found [16, 8]" in msg
    # Nothing was half-loaded.
    assert float(dict(m.named_parameters())["embeddings.word_embeddings.weight"].abs().max()) == 0.0
    ints = dict(good, **{"pooler.dense.bias": np.zeros(16, dtype="int64")})
    with pytest.raises(AutoftError, match="tensor pooler.dense.bias: expected a float tensor, found int64"):
        C.assign_state(m, ints, "x")
    C.assign_state(m, good, "ok")
    assert float(dict(m.named_parameters())["embeddings.word_embeddings.weight"].min()) == 1.0


def test_wrong_shape_in_file_names_tensor_file_and_shapes(tmp_path):
    from safetensors.numpy import load_file, save_file

    out = _saved(tmp_path)
    state = load_file(str(out / "model.safetensors"))
    state["bert.encoder.layers.0.attention.qkv.weight"] = np.zeros((16, 32), dtype="float32")
    save_file(state, str(out / "model.safetensors"))
    with pytest.raises(AutoftError) as e:
        C.load_classifier(out)
    assert str(e.value).startswith(f"{out / 'model.safetensors'}: cannot load")
    assert (
        "tensor bert.encoder.layers.0.attention.qkv.weight: expected shape [16, 48], found [16, 32]"
        in str(e.value)
    )


def test_vocab_size_mismatch_names_both(tmp_path):
    out = _saved(tmp_path)
    write_vocab(out / "vocab.txt", 29)
    with pytest.raises(AutoftError) as e:
        C.load_pretrained(out)
    msg = str(e.value)
    assert f"{out / 'vocab.txt'}: vocabulary has 29 tokens" in msg
    assert f"{out / 'model.safetensors'} has 30 rows in embeddings.word_embeddings.weight" in msg
    with pytest.raises(AutoftError, match="vocabulary has 31 tokens but the model being saved"):
        C.save_pretrained(classifier(), tmp_path / "other", write_vocab(tmp_path / "v31.txt", 31))


def test_corrupt_files_name_the_file(tmp_path):
    out = _saved(tmp_path)
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AutoftError, match=f"{weights}: cannot read as safetensors"):
        C.load_pretrained(out)
    weights.unlink()
    with pytest.raises(AutoftError, match=f"{weights}: file not found"):
        C.load_classifier(out)
    out2 = _saved(tmp_path, name="c2")
    (out2 / "config.json").write_text('{"autoft_format": 1, "hidden_size": ')
    with pytest.raises(AutoftError, match=f"{out2 / 'config.json'}:1: cannot read the model config .*: invalid JSON"):
        C.load_classifier(out2)
    (out2 / "config.json").write_text('{"autoft_format": 1, "hidden_size": 16}')
    with pytest.raises(AutoftError, match=f"{out2 / 'config.json'}: model config is missing vocab_size"):
        C.load_pretrained(out2)
    (out2 / "config.json").write_text('{"autoft_format": 7}')
    with pytest.raises(AutoftError, match="autoft_format 7 is not supported; expected 1"):
        C.load_pretrained(out2)


def test_load_classifier_errors(tmp_path):
    enc_dir = _saved(tmp_path, BertModel(tiny_config()), name="enc")
    with pytest.raises(
        AutoftError, match="labels.json: file not found: .* holds an encoder, not a classifier"
    ):
        C.load_classifier(enc_dir)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(AutoftError, match="not an autoft checkpoint .*`autoft convert .*hf DST`"):
        C.load_classifier(tmp_path / "hf")
    with pytest.raises(AutoftError, match="classifier directory not found"):
        C.load_classifier(tmp_path / "missing")
    cls_dir = _saved(tmp_path, name="cls")
    (cls_dir / "labels.json").write_text('{"0": "a"}')
    with pytest.raises(AutoftError, match="expected a non-empty JSON list of label strings"):
        C.load_classifier(cls_dir)


def test_unknown_directory_layout_lists_what_was_found(tmp_path):
    d = tmp_path / "weird"
    d.mkdir()
    (d / "weights.npz").write_bytes(b"x")
    with pytest.raises(AutoftError) as e:
        C.load_pretrained(d)
    assert f"{d}: not a model directory autoft knows (found: weights.npz)" in str(e.value)
    assert "Hugging Face" in str(e.value)


def test_foreign_directory_loads_through_weights_and_logs_unused(tmp_path, caplog):
    """A Hugging Face directory (safetensors, PyTorch names) loads into our encoder."""
    from safetensors.numpy import save_file

    weights = pytest.importorskip("autoft.weights")
    paddle.seed(10)
    ours = BertModel(tiny_config(layer_norm_eps=1e-12))
    hf = {}
    for n, v in params(ours).items():
        name = n.replace("encoder.layers.", "encoder.layer.")
        name = name.replace("embeddings.layer_norm", "embeddings.LayerNorm")
        name = name.replace(".attention_norm.", ".attention.output.LayerNorm.")
        name = name.replace(".attention.out.", ".attention.output.dense.")
        name = name.replace(".ffn_in.", ".intermediate.dense.").replace(".ffn_out.", ".output.dense.")
        name = name.replace(".ffn_norm.", ".output.LayerNorm.")
        if ".attention.qkv." in n:
            for part, piece in zip(("query", "key", "value"), np.split(v, 3, axis=-1)):
                key = name.replace(".attention.qkv.", f".attention.self.{part}.")
                hf["bert." + key] = np.ascontiguousarray(piece.T if piece.ndim == 2 else piece)
            continue
        if v.ndim == 2 and "embeddings" not in n:
            v = v.T
        hf["bert." + name] = np.ascontiguousarray(v)
    hf["cls.predictions.bias"] = np.zeros(30, dtype="float32")
    d = tmp_path / "hf"
    d.mkdir()
    save_file(hf, str(d / "model.safetensors"))
    cfg = {
        **tiny_config(layer_norm_eps=1e-12).to_dict(),
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
    }
    (d / "config.json").write_text(json.dumps(cfg))
    write_vocab(d / "vocab.txt", 30)
    assert weights.detect_format(d) == "hf"
    with caplog.at_level(logging.INFO, logger="autoft"):
        loaded = C.load_pretrained(d)
    for n, v in params(ours).items():
        np.testing.assert_array_equal(v, params(loaded)[n], err_msg=n)
    assert any(
        "not used" in r.getMessage() and "cls.predictions.bias" in r.getMessage() for r in caplog.records
    )
