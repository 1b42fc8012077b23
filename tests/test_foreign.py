"""Foreign weight formats: HF (safetensors and .bin), PaddleNLP, PaddleHub 1.x.

One tiny random transformers BertForPreTraining is the reference. The test writes it in
each format with that format's own tools (transformers / torch.save, paddle.save, Paddle's
static save_vars), independently of autoft's name tables, then checks what autoft reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from autoft.errors import AutoftError
from autoft.weights import detect_format, read_foreign_raw, read_lod_tensor, write_lod_tensor

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 100
SHAPE = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=40, type_vocab_size=2)
HUB_NAME = "roberta_wwm_ext_chinese_L-2_H-32_A-4"
# A batch with padding: row 1 has two pad positions.
IDS = np.array([[2, 10, 11, 12, 3, 40, 41], [2, 20, 21, 3, 50, 0, 0]], dtype=np.int64)
TYPES = np.array([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 0, 0]], dtype=np.int64)
MASK = (IDS != 0).astype(np.int64)


def vocab_tokens(n=VOCAB):
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"t{i}" for i in range(n - 5)]


def write_vocab(path: Path, n=VOCAB):
    path.write_text("\n".join(vocab_tokens(n)) + "\n", encoding="utf-8")


def hf_model(layer_norm_eps=1e-12, seed=0):
    torch.manual_seed(seed)
    # pad_token_id 1 as the old hfl configs said: autoft must take [PAD]=0 from vocab.txt.
    config = transformers.BertConfig(**SHAPE, layer_norm_eps=layer_norm_eps, pad_token_id=1)
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():  # LayerNorm/bias params start at 1/0: randomise so every tensor matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def hf_outputs(model):
    with torch.no_grad():
        out = model.bert(torch.tensor(IDS), token_type_ids=torch.tensor(TYPES), attention_mask=torch.tensor(MASK))
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


def encoder_state(model) -> dict:
    """HF encoder tensors by HF name (no bert. prefix), numpy, PyTorch orientation."""
    return {k: v.detach().numpy().copy() for k, v in model.bert.state_dict().items() if "position_ids" not in k}


# ---------------------------------------------------------------- writers, one per format


def write_hf_safetensors(model, out: Path) -> Path:
    model.bert.save_pretrained(out)  # BertModel: names without prefix, model.safetensors
    write_vocab(out / "vocab.txt")
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return out


def write_hf_bin(model, out: Path) -> Path:
    """The whole pretraining model (bert. prefix + cls.* heads) as pytorch_model.bin, with the
    gamma/beta LayerNorm names of TensorFlow-converted checkpoints."""
    out.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in model.state_dict().items():
        if "LayerNorm.weight" in k:
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma")
        elif "LayerNorm.bias" in k:
            k = k.replace("LayerNorm.bias", "LayerNorm.beta")
        state[k] = v.clone()
    torch.save(state, out / "pytorch_model.bin")
    model.config.to_json_file(out / "config.json")
    write_vocab(out / "vocab.txt")
    return out


def to_paddlenlp(hf: dict) -> dict:
    """HF encoder names -> PaddleNLP names, [out,in] -> [in,out] (written out, not from autoft)."""
    out = {}
    for k, v in hf.items():
        k2 = (k.replace("embeddings.LayerNorm", "embeddings.layer_norm").replace("encoder.layer.", "encoder.layers.")
              .replace("attention.self.query", "self_attn.q_proj").replace("attention.self.key", "self_attn.k_proj")
              .replace("attention.self.value", "self_attn.v_proj").replace("attention.output.dense", "self_attn.out_proj")
              .replace("attention.output.LayerNorm", "norm1").replace("intermediate.dense", "linear1")
              .replace("output.dense", "linear2").replace("output.LayerNorm", "norm2"))
        out[k2] = v.T.copy() if v.ndim == 2 and "embeddings" not in k else v
    return out


def write_paddlenlp(model, out: Path, classifier=None, prefix="roberta.") -> Path:
    import paddle

    out.mkdir(parents=True, exist_ok=True)
    state = {prefix + k: paddle.to_tensor(v) for k, v in to_paddlenlp(encoder_state(model)).items()}
    if classifier is not None:
        state["classifier.weight"] = paddle.to_tensor(classifier[0])
        state["classifier.bias"] = paddle.to_tensor(classifier[1])
    paddle.save(state, str(out / "model_state.pdparams"))
    args = {k: getattr(model.config, k) for k in (*SHAPE, "hidden_act", "hidden_dropout_prob",
                                                   "attention_probs_dropout_prob", "initializer_range")}
    args["pad_token_id"] = 0
    (out / "model_config.json").write_text(json.dumps({"init_args": [args], "init_class": "RobertaModel"}))
    write_vocab(out / "vocab.txt")
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return out


def to_paddlehub(hf: dict) -> dict:
    """HF encoder names -> PaddleHub 1.x static variable names (written out, not from autoft)."""
    out = {"word_embedding": hf["embeddings.word_embeddings.weight"],
           "pos_embedding": hf["embeddings.position_embeddings.weight"],
           "sent_embedding": hf["embeddings.token_type_embeddings.weight"],
           "pre_encoder_layer_norm_scale": hf["embeddings.LayerNorm.weight"],
           "pre_encoder_layer_norm_bias": hf["embeddings.LayerNorm.bias"],
           "pooled_fc.w_0": hf["pooler.dense.weight"].T, "pooled_fc.b_0": hf["pooler.dense.bias"]}
    for i in range(SHAPE["num_hidden_layers"]):
        h, s = f"encoder.layer.{i}.", f"encoder_layer_{i}_"
        for src, dst in (("attention.self.query", "multi_head_att_query_fc"),
                         ("attention.self.key", "multi_head_att_key_fc"),
                         ("attention.self.value", "multi_head_att_value_fc"),
                         ("attention.output.dense", "multi_head_att_output_fc"),
                         ("intermediate.dense", "ffn_fc_0"), ("output.dense", "ffn_fc_1")):
            out[s + dst + ".w_0"] = hf[h + src + ".weight"].T
            out[s + dst + ".b_0"] = hf[h + src + ".bias"]
        for src, dst in (("attention.output.LayerNorm", "post_att_layer_norm"), ("output.LayerNorm", "post_ffn_layer_norm")):
            out[s + dst + "_scale"] = hf[h + src + ".weight"]
            out[s + dst + "_bias"] = hf[h + src + ".bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def paddle_save_vars(arrays: dict, out_dir: Path) -> None:
    """One LoDTensor file per variable, written by Paddle's own static-graph save_vars."""
    import paddle

    paddle.enable_static()
    try:
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.scope_guard(paddle.static.Scope()):
            with paddle.static.program_guard(main, startup):
                params = [paddle.create_parameter(shape=list(a.shape), dtype=str(a.dtype), name=n,
                                                  default_initializer=paddle.nn.initializer.Constant(0))
                          for n, a in arrays.items()]
            exe = paddle.static.Executor(paddle.CPUPlace())
            exe.run(startup)
            scope = paddle.static.global_scope()
            for n, a in arrays.items():
                scope.find_var(n).get_tensor().set(a, paddle.CPUPlace())
            paddle.static.save_vars(exe, str(out_dir), main_program=main, vars=params)
    finally:
        paddle.disable_static()


def write_paddlehub1(model, root: Path, name=HUB_NAME, classifier=None, extra=None) -> Path:
    module = root / name
    (module / "assets" / "params").mkdir(parents=True, exist_ok=True)
    arrays = {f"@HUB_{name}@{k}": v for k, v in to_paddlehub(encoder_state(model)).items()}
    if classifier is not None:  # the fine-tune task's head has no @HUB_ prefix
        arrays["cls_out_w"], arrays["cls_out_b"] = classifier
    arrays.update(extra or {})
    paddle_save_vars(arrays, module / "assets" / "params")
    write_vocab(module / "assets" / "vocab.txt")
    return module


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ref():
    return hf_model()


@pytest.fixture(scope="module")
def dirs(ref, tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    return {
        "safetensors": write_hf_safetensors(ref, root / "hf_st"),
        "bin": write_hf_bin(ref, root / "hf_bin"),
        "paddlenlp": write_paddlenlp(ref, root / "nlp"),
        "paddlehub1": write_paddlehub1(ref, root / "hub"),
    }


def expected_ours(hf: dict) -> dict:
    """What our names must hold, derived by hand from HF names (the design.md contract)."""
    out = {"embeddings.word_embeddings.weight": hf["embeddings.word_embeddings.weight"],
           "embeddings.layer_norm.weight": hf["embeddings.LayerNorm.weight"],
           "pooler.dense.weight": hf["pooler.dense.weight"].T}
    for i in range(SHAPE["num_hidden_layers"]):
        h = f"encoder.layer.{i}.attention."
        out[f"encoder.layers.{i}.attention.qkv.weight"] = np.concatenate(
            [hf[h + f"self.{n}.weight"].T for n in ("query", "key", "value")], axis=1)
        out[f"encoder.layers.{i}.attention.qkv.bias"] = np.concatenate(
            [hf[h + f"self.{n}.bias"] for n in ("query", "key", "value")])
        out[f"encoder.layers.{i}.attention.out.weight"] = hf[h + "output.dense.weight"].T
        out[f"encoder.layers.{i}.ffn_out.weight"] = hf[f"encoder.layer.{i}.output.dense.weight"].T
        out[f"encoder.layers.{i}.ffn_norm.bias"] = hf[f"encoder.layer.{i}.output.LayerNorm.bias"]
    return out


# ---------------------------------------------------------------- tests: reading


@pytest.mark.parametrize("kind,fmt", [("safetensors", "hf"), ("bin", "hf"), ("paddlenlp", "paddlenlp"),
                                      ("paddlehub1", "paddlehub1")])
def test_each_format_is_detected_and_maps_to_our_names(ref, dirs, kind, fmt):
    assert detect_format(dirs[kind]) == fmt
    cfg, state, info = read_foreign_raw(dirs[kind])
    assert info["format"] == fmt
    assert {k: cfg[k] for k in SHAPE} == SHAPE
    assert cfg["pad_token_id"] == 0  # from vocab.txt, not the HF config's 1
    assert cfg["layer_norm_eps"] == (1e-5 if fmt == "paddlehub1" else 1e-12)
    assert len(state) == 5 + 2 + 12 * SHAPE["num_hidden_layers"]
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in state.values())
    for name, want in expected_ours(encoder_state(ref)).items():
        np.testing.assert_array_equal(state[name], want, err_msg=name)
    assert info["classifier"] is None
    assert info["do_lower_case"] is True


def test_hf_bin_reports_unused_mlm_heads(dirs):
    _, _, info = read_foreign_raw(dirs["bin"])
    assert info["unused"] and all(n.startswith("cls.") for n in info["unused"])
    assert "cls.predictions.transform.dense.weight" in info["unused"]
    _, _, info = read_foreign_raw(dirs["safetensors"])
    assert info["unused"] == []


def test_lod_tensor_reader_matches_paddle_save_vars(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a.w_0": rng.standard_normal((3, 5)).astype(np.float32),
              "@HUB_m@b": rng.standard_normal(7).astype(np.float32),
              "c": np.arange(6, dtype=np.int64).reshape(2, 3, 1),
              "d": rng.standard_normal((2, 2)).astype(np.float16)}
    paddle_save_vars(arrays, tmp_path)
    for name, want in arrays.items():
        got = read_lod_tensor(tmp_path / name)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        # our writer produces the same bytes as Paddle's save op
        write_lod_tensor(tmp_path / "ours", want)
        assert (tmp_path / "ours").read_bytes() == (tmp_path / name).read_bytes()


def test_lod_tensor_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "x"
    bad.write_bytes(b"\x01\x00\x00\x00" + b"\x00" * 20)
    with pytest.raises(AutoftError, match=r"x: not a Paddle LoDTensor file \(version 1, expected 0\)"):
        read_lod_tensor(bad)
    write_lod_tensor(bad, np.zeros((2, 3), np.float32))
    bad.write_bytes(bad.read_bytes()[:-4])
    with pytest.raises(AutoftError, match=r"shape \[2, 3\] \(float32\) needs 24 data bytes, found 20"):
        read_lod_tensor(bad)


def test_paddlehub_finetuned_head_and_optimizer_state(ref, tmp_path):
    rng = np.random.default_rng(1)
    head = (rng.standard_normal((32, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32))
    extra = {f"@HUB_{HUB_NAME}@word_embedding_moment1_0": np.zeros((VOCAB, 32), np.float32),
             "learning_rate_0": np.ones(1, np.float32)}
    module = write_paddlehub1(ref, tmp_path, classifier=head, extra=extra)
    _, _, info = read_foreign_raw(module)
    np.testing.assert_array_equal(info["classifier"]["weight"], head[0])
    np.testing.assert_array_equal(info["classifier"]["bias"], head[1])
    assert sorted(info["unused"]) == sorted(["word_embedding_moment1_0", "learning_rate_0"])


def test_paddlehub_config_file_wins_over_inference(ref, tmp_path):
    module = write_paddlehub1(ref, tmp_path, name="my_module")  # no _A-<heads> in the name
    with pytest.raises(AutoftError, match=r"my_module: cannot tell the number of attention heads.*"
                                          r"assets/bert_config.json"):
        read_foreign_raw(module)
    (module / "assets" / "bert_config.json").write_text(json.dumps({**SHAPE, "num_attention_heads": 8}))
    cfg, _, info = read_foreign_raw(module)
    assert cfg["num_attention_heads"] == 8 and cfg["layer_norm_eps"] == 1e-5
    assert info["config_source"].endswith("bert_config.json")


def test_paddlenlp_classifier_and_flat_config(ref, tmp_path):
    rng = np.random.default_rng(2)
    head = (rng.standard_normal((32, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32))
    d = write_paddlenlp(ref, tmp_path / "nlp", classifier=head, prefix="bert.")
    args = json.loads((d / "model_config.json").read_text())["init_args"][0]
    (d / "model_config.json").unlink()
    (d / "config.json").write_text(json.dumps(args))  # newer PaddleNLP: flat config.json
    assert detect_format(d) == "paddlenlp"
    cfg, _, info = read_foreign_raw(d)
    assert cfg["num_hidden_layers"] == 2
    np.testing.assert_array_equal(info["classifier"]["weight"], head[0])


def test_detect_format_unknown_and_autoft(tmp_path):
    assert detect_format(tmp_path) is None
    assert detect_format(tmp_path / "nope") is None
    (tmp_path / "config.json").write_text(json.dumps({"autoft_format": 1}))
    assert detect_format(tmp_path) == "autoft"
    with pytest.raises(AutoftError, match=r"nope: model directory not found"):
        read_foreign_raw(tmp_path / "nope")


# ---------------------------------------------------------------- tests: error paths


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_safetensors(d: Path, edit) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(d / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(d / "model.safetensors"))


def test_unknown_tensor_names_are_listed_with_the_file(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")

    def add(t):
        t["encoder.layer.0.attention.self.rotary.weight"] = np.zeros(3, np.float32)
        t["adapter.x"] = np.zeros(3, np.float32)

    _edit_safetensors(d, add)
    with pytest.raises(AutoftError) as exc:
        read_foreign_raw(d)
    msg = str(exc.value)
    assert msg.startswith(f"{d / 'model.safetensors'}: 2 tensor name(s) are not BERT weights")
    assert "adapter.x, encoder.layer.0.attention.self.rotary.weight" in msg


def test_missing_tensor_is_named(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")
    _edit_safetensors(d, lambda t: (t.pop("pooler.dense.bias"), t.pop("encoder.layer.1.attention.self.key.weight")))
    with pytest.raises(AutoftError, match=r"missing tensor\(s\) for encoder.layers.1.attention.qkv.weight: found "
                                          r"encoder.layer.1.attention.self.query.weight, "
                                          r"encoder.layer.1.attention.self.value.weight but not the key part"):
        read_foreign_raw(d)
    _edit_safetensors(d, lambda t: t.pop("encoder.layer.1.attention.self.query.weight"))
    _edit_safetensors(d, lambda t: t.pop("encoder.layer.1.attention.self.value.weight"))
    with pytest.raises(AutoftError, match=r"missing tensor\(s\) encoder.layers.1.attention.qkv.weight, pooler.dense.bias"):
        read_foreign_raw(d)


def test_wrong_shape_says_expected_and_found(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")
    _edit_safetensors(d, lambda t: t.update({"encoder.layer.0.intermediate.dense.weight": np.zeros((48, 32), np.float32)}))
    with pytest.raises(AutoftError, match=r"wrong shape: encoder.layers.0.ffn_in.weight \(from "
                                          r"encoder.layer.0.intermediate.dense.weight\): expected \[32, 64\], "
                                          r"found \[32, 48\]"):
        read_foreign_raw(d)


def test_layer_beyond_config_depth(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 1}))
    with pytest.raises(AutoftError, match=r"encoder.layer.1.\S+ .*are not part of a 1-layer model "
                                          r"\(num_hidden_layers from .*config.json\)"):
        read_foreign_raw(d)


def test_missing_files_are_named_with_expected_path(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")
    (d / "vocab.txt").unlink()
    with pytest.raises(AutoftError, match=rf"{d / 'vocab.txt'}: vocabulary file not found"):
        read_foreign_raw(d)
    (d / "config.json").unlink()
    with pytest.raises(AutoftError, match=rf"{d / 'config.json'}: config file not found"):
        read_foreign_raw(d)
    n = _copy(dirs["paddlenlp"], tmp_path / "n")
    (n / "model_config.json").unlink()
    with pytest.raises(AutoftError, match=rf"{n / 'model_config.json'}: config file not found"):
        read_foreign_raw(n)
    h = _copy(dirs["paddlehub1"], tmp_path / "h" / HUB_NAME)
    (h / "assets" / "vocab.txt").unlink()
    with pytest.raises(AutoftError, match=rf"{h / 'assets' / 'vocab.txt'}: vocabulary file not found"):
        read_foreign_raw(h)
    with pytest.raises(AutoftError, match=rf"{tmp_path}: not a model directory this reader knows \(no known weight "
                                          r"files found; model directories inside it: m, n\)"):
        read_foreign_raw(tmp_path)


def test_vocab_that_does_not_match_the_embedding(dirs, tmp_path):
    d = _copy(dirs["paddlenlp"], tmp_path / "n")
    write_vocab(d / "vocab.txt", VOCAB + 3)
    with pytest.raises(AutoftError, match=r"vocabulary has 103 tokens but the model's word embedding has 100 rows"):
        read_foreign_raw(d)


def test_config_missing_shape_keys(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")
    cfg = json.loads((d / "config.json").read_text())
    del cfg["intermediate_size"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AutoftError, match=r"config.json: model config is missing intermediate_size"):
        read_foreign_raw(d)


def test_pytorch_bin_without_torch_says_how_to_fix(dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(AutoftError, match=r"pytorch_model.bin: reading pytorch_model.bin needs PyTorch, which is not "
                                          r"installed; install it \(`pip install torch`\) or use the model.safetensors"):
        read_foreign_raw(dirs["bin"])


# ---------------------------------------------------------------- tests: outputs through load_pretrained


def autoft_outputs(model):
    import paddle

    model.eval()
    with paddle.no_grad():
        seq, pooled = model(paddle.to_tensor(IDS), paddle.to_tensor(TYPES), paddle.to_tensor(MASK))
    return seq.numpy(), pooled.numpy()


def assert_same_outputs(got, want):
    (seq, pooled), (ref_seq, ref_pooled) = got, want
    assert seq.dtype == np.float32 and seq.shape == ref_seq.shape
    # every position, padding included, and the pooled output
    assert np.abs(seq - ref_seq).max() <= 1e-5
    assert np.abs(pooled - ref_pooled).max() <= 1e-5


@pytest.mark.parametrize("kind", ["safetensors", "bin", "paddlenlp"])
def test_load_pretrained_gives_transformers_outputs(ref, dirs, kind):
    from autoft.checkpoint import load_pretrained

    model = load_pretrained(dirs[kind])
    assert model.config.pad_token_id == 0
    assert_same_outputs(autoft_outputs(model), hf_outputs(ref))


def test_load_pretrained_paddlehub1_gives_transformers_outputs(ref, tmp_path):
    from autoft.checkpoint import load_pretrained

    # Same weights; PaddleHub's static LayerNorm used eps 1e-5, so the reference does too.
    ref5 = hf_model(layer_norm_eps=1e-5)
    module = write_paddlehub1(ref5, tmp_path)
    model = load_pretrained(module)
    assert model.config.layer_norm_eps == 1e-5
    assert_same_outputs(autoft_outputs(model), hf_outputs(ref5))


def test_paddlehub_files_without_hub_prefix(ref, dirs, tmp_path):
    module = tmp_path / HUB_NAME
    (module / "assets" / "params").mkdir(parents=True)
    for name, array in to_paddlehub(encoder_state(ref)).items():
        write_lod_tensor(module / "assets" / "params" / name, array)
    write_vocab(module / "assets" / "vocab.txt")
    assert detect_format(module) == "paddlehub1"
    _, state, _ = read_foreign_raw(module)
    _, want, _ = read_foreign_raw(dirs["paddlehub1"])
    assert state.keys() == want.keys()
    assert all(np.array_equal(state[k], want[k]) for k in want)


def test_same_weight_under_two_prefixes_is_refused(dirs, tmp_path):
    d = _copy(dirs["safetensors"], tmp_path / "m")
    _edit_safetensors(d, lambda t: t.update({"bert.pooler.dense.bias": t["pooler.dense.bias"]}))
    with pytest.raises(AutoftError, match=r"tensors bert.pooler.dense.bias and pooler.dense.bias both map to "
                                          r"pooler.dense.bias"):
        read_foreign_raw(d)


def test_one_vocab_and_json_reader_for_every_caller(tmp_path):
    """vocab.txt and JSON files are read by autoft.weights.files for the tokenizer, our format
    and the foreign ones: same line rule (BOM, CRLF, final newline), same messages."""
    from autoft.tokenizer import read_vocab
    from autoft.weights import check_vocab_size, read_json, read_vocab_file

    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes("\ufeff[PAD]\r\n[UNK]\r\n[CLS]\n[SEP]\nx\n".encode())
    assert list(read_vocab_file(vocab).tokens) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "x"]
    ids, raw = read_vocab(vocab)
    assert ids == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "x": 4} and raw == vocab.read_bytes()
    with pytest.raises(AutoftError, match=r"vocab.txt: vocabulary has 5 tokens but the weights has 6 rows in w\.e; "
                                          r"expected the vocab.txt that belongs to these weights"):
        check_vocab_size(vocab, 6, "the weights", " in w.e")
    vocab.write_bytes(b"[PAD]\n\xff\n")
    with pytest.raises(AutoftError, match=r"vocab.txt: expected UTF-8 text, found invalid byte at offset 6"):
        read_vocab_file(vocab)
    bad = tmp_path / "c.json"
    bad.write_text('{"a": 1,\n "b": }')
    with pytest.raises(AutoftError, match=r"c.json:2: cannot read the thing \(a JSON object\): invalid JSON"):
        read_json(bad, "the thing (a JSON object)", dict)
    bad.write_text("[1]")
    with pytest.raises(AutoftError, match=r"c.json: expected the thing \(a JSON object\), found list"):
        read_json(bad, "the thing (a JSON object)", dict)
