"""The model: config, levels, both compute paths, masking, dropout, the large preset."""

import numpy as np
import paddle
import pytest

from autoft import model as M
from autoft.errors import AutoftError
from autoft.model import BertConfig, BertForSequenceClassification, BertModel


def tiny_config(**kw):
    base = dict(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=24,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    base.update(kw)
    return BertConfig(**base)


def batch(seed=0, b=3, s=9, vocab=60):
    """A batch with padding: row 0 full, rows 1 and 2 padded at the end."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, vocab, (b, s)).astype("int64")
    mask = np.ones((b, s), dtype="int64")
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    types = np.zeros((b, s), dtype="int64")
    types[:, 4:] = 1
    return ids, types, mask


def t(a):
    return paddle.to_tensor(a)


TWO_LAYER_LEVELS = [
    ["classifier.bias"],
    ["classifier.weight"],
    ["bert.pooler.dense.weight", "bert.pooler.dense.bias"],
    ["bert.encoder.layers.1.ffn_norm.weight", "bert.encoder.layers.1.ffn_norm.bias"],
    ["bert.encoder.layers.1.ffn_out.weight", "bert.encoder.layers.1.ffn_out.bias"],
    ["bert.encoder.layers.1.ffn_in.weight", "bert.encoder.layers.1.ffn_in.bias"],
    ["bert.encoder.layers.1.attention_norm.weight", "bert.encoder.layers.1.attention_norm.bias"],
    ["bert.encoder.layers.1.attention.out.weight", "bert.encoder.layers.1.attention.out.bias"],
    ["bert.encoder.layers.1.attention.qkv.weight", "bert.encoder.layers.1.attention.qkv.bias"],
    ["bert.encoder.layers.0.ffn_norm.weight", "bert.encoder.layers.0.ffn_norm.bias"],
    ["bert.encoder.layers.0.ffn_out.weight", "bert.encoder.layers.0.ffn_out.bias"],
    ["bert.encoder.layers.0.ffn_in.weight", "bert.encoder.layers.0.ffn_in.bias"],
    ["bert.encoder.layers.0.attention_norm.weight", "bert.encoder.layers.0.attention_norm.bias"],
    ["bert.encoder.layers.0.attention.out.weight", "bert.encoder.layers.0.attention.out.bias"],
    ["bert.encoder.layers.0.attention.qkv.weight", "bert.encoder.layers.0.attention.qkv.bias"],
    ["bert.embeddings.layer_norm.weight", "bert.embeddings.layer_norm.bias"],
    [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
    ],
]


def test_levels_of_two_layer_classifier_are_pinned():
    paddle.seed(0)
    m = BertForSequenceClassification(tiny_config(), ["a", "b"])
    assert m.levels() == TWO_LAYER_LEVELS


def test_levels_cover_every_trainable_parameter_exactly_once():
    paddle.seed(0)
    for m in (
        BertForSequenceClassification(tiny_config(num_hidden_layers=3), ["x"]),
        BertModel(tiny_config()),
    ):
        flat = [n for level in m.levels() for n in level]
        assert len(flat) == len(set(flat))
        assert set(flat) == {n for n, p in m.named_parameters() if not p.stop_gradient}
    enc = BertModel(tiny_config())
    # The encoder alone: no classifier levels, no "bert." prefix; 6 per layer + pooler + 2 embedding levels.
    assert enc.levels()[0] == ["pooler.dense.weight", "pooler.dense.bias"]
    assert len(enc.levels()) == 6 * 2 + 3
    assert [lv for lv in TWO_LAYER_LEVELS[2:]] == [["bert." + n for n in lv] for lv in enc.levels()]


def test_layer_of_maps_embeddings_layers_and_head():
    m = BertForSequenceClassification(tiny_config(), ["a", "b"])
    got = {n: m.layer_of(n) for n, _ in m.named_parameters()}
    assert got["bert.embeddings.word_embeddings.weight"] == 0
    assert got["bert.embeddings.layer_norm.bias"] == 0
    assert got["bert.encoder.layers.0.attention.qkv.weight"] == 1
    assert got["bert.encoder.layers.1.ffn_norm.bias"] == 2
    assert got["bert.pooler.dense.weight"] == 3
    assert got["classifier.bias"] == 3
    assert BertModel(tiny_config()).layer_of("encoder.layers.1.ffn_in.weight") == 2
    with pytest.raises(AutoftError, match="not a parameter"):
        m.layer_of("decoder.weight")


def _run(m, path, ids, types, mask, seed=1):
    """Outputs and all parameter gradients of a loss touching every output, on ``path``."""
    m.use_path(path)
    m.clear_gradients()
    logits = m(t(ids), t(types), t(mask))
    seq, pooled = m.bert(t(ids), t(types), t(mask))
    r = np.random.RandomState(seed).randn(*seq.shape).astype("float32")
    loss = (seq * t(r)).mean() + (logits**2).mean() + pooled.mean()
    loss.backward()
    grads = {n: (None if p.grad is None else p.grad.numpy().copy()) for n, p in m.named_parameters()}
    return [x.numpy() for x in (logits, seq, pooled)], grads


def _assert_close(a, b, what):
    scale = max(1.0, float(np.abs(b).max()))
    diff = float(np.abs(a - b).max())
    assert diff <= 1e-5 * scale, f"{what}: max diff {diff} (scale {scale})"


@pytest.mark.parametrize("legacy_ln", [True, False])
def test_cpu_path_matches_native_outputs_and_gradients(monkeypatch, legacy_ln):
    # Second case: Paddle without the legacy layer_norm op (the CPU path's LayerNorm falls back).
    if not legacy_ln:
        monkeypatch.setattr(M, "_legacy_ops", None)
    paddle.seed(3)
    m = BertForSequenceClassification(tiny_config(num_hidden_layers=2, hidden_size=32), ["a", "b", "c"])
    m.eval()  # dropout off: both paths must agree to float rounding
    ids, types, mask = batch(vocab=60)
    out_cpu, g_cpu = _run(m, "cpu", ids, types, mask)
    out_nat, g_nat = _run(m, "native", ids, types, mask)
    for a, b, name in zip(out_cpu, out_nat, ["logits", "sequence", "pooled"]):
        _assert_close(a, b, name)
    assert set(g_cpu) == set(g_nat)
    for n in g_nat:
        assert g_cpu[n] is not None and g_nat[n] is not None, n
        _assert_close(g_cpu[n], g_nat[n], n)
    # Gradients are non-trivial (a test that cannot fail would pass with all zeros).
    assert np.abs(g_cpu["bert.encoder.layers.0.attention.qkv.weight"]).max() > 1e-4


@pytest.mark.parametrize("which", ["bottom", "middle"])
def test_frozen_parameters_get_no_gradient_on_both_paths(which):
    paddle.seed(4)
    m = BertForSequenceClassification(tiny_config(), ["a", "b"])
    m.eval()
    # bottom: everything below the top layer's FFN (gradual unfreezing); middle: frozen weights
    # whose inputs still need a gradient (the kernels must pass dx through a frozen layer).
    chosen = m.levels()[6:] if which == "bottom" else m.levels()[2:9]
    frozen = [n for lv in chosen for n in lv]
    params = dict(m.named_parameters())
    for n in frozen:
        params[n].stop_gradient = True
    ids, types, mask = batch()
    _, g_cpu = _run(m, "cpu", ids, types, mask)
    _, g_nat = _run(m, "native", ids, types, mask)
    for n in params:
        if n in frozen:
            assert g_cpu[n] is None and g_nat[n] is None, n
        else:
            _assert_close(g_cpu[n], g_nat[n], n)


@pytest.mark.parametrize("path", ["cpu", "native"])
def test_padding_is_masked_out_of_attention(path):
    paddle.seed(5)
    m = BertModel(tiny_config())
    m.eval()
    m.use_path(path)
    ids, types, mask = batch()
    seq1, pooled1 = m(t(ids), t(types), t(mask))
    ids2 = ids.copy()
    ids2[mask == 0] = np.arange(1, int((mask == 0).sum()) + 1)  # other tokens in the padded slots
    seq2, pooled2 = m(t(ids2), t(types), t(mask))
    keep = mask.astype(bool)
    np.testing.assert_allclose(seq1.numpy()[keep], seq2.numpy()[keep], atol=1e-6)
    np.testing.assert_allclose(pooled1.numpy(), pooled2.numpy(), atol=1e-6)
    # Without the mask the padded tokens are attended to and the outputs change.
    seq3, _ = m(t(ids2), t(types))
    assert np.abs(seq3.numpy()[keep] - seq1.numpy()[keep]).max() > 1e-3


def test_default_mask_and_token_types():
    paddle.seed(6)
    m = BertModel(tiny_config())
    m.eval()
    ids, _, mask = batch()  # padded slots hold the pad id 0
    a, pa = m(t(ids))
    b, pb = m(t(ids), t(np.zeros_like(ids)), t(mask))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(pa.numpy(), pb.numpy())
    assert a.shape == [3, 9, 16] and pa.shape == [3, 16]
    m59 = BertModel(tiny_config(pad_token_id=59))  # the mask follows the config's pad id
    m59.eval()
    ids59 = np.where(mask == 1, np.minimum(ids, 58), 59)
    np.testing.assert_array_equal(m59(t(ids59))[1].numpy(), m59(t(ids59), attention_mask=t(mask))[1].numpy())


@pytest.mark.parametrize("path", ["cpu", "native"])
def test_a_sentence_gets_the_same_logits_alone_and_padded_in_a_batch_without_a_mask(path):
    # Issue 12: a zero-padded batch without attention_mask used to shift short sentences' logits.
    paddle.seed(14)
    m = BertForSequenceClassification(tiny_config(), ["neg", "pos"]).use_path(path)
    m.eval()
    m.classifier.weight.set_value(m.classifier.weight * 1000.0)  # logits of order 1, not 1e-3
    rng = np.random.RandomState(3)
    short = [2, *rng.randint(4, 60, 3), 3]  # [CLS] 3 tokens [SEP]
    padded = np.zeros((3, 9), dtype="int64")
    padded[0, :5] = short
    padded[1] = [2, *rng.randint(4, 60, 7), 3]
    padded[2, :7] = [2, *rng.randint(4, 60, 5), 3]
    alone = m(t(np.array([short], dtype="int64"))).numpy()[0]
    in_batch = m(t(padded)).numpy()
    _assert_close(in_batch[0], alone, "logits alone vs padded")
    ones = m(t(padded), attention_mask=t(np.ones_like(padded))).numpy()[0]
    assert np.abs(alone).max() > 0.3 and np.abs(ones - alone).max() > 1e-2  # attending to padding shifts them


@pytest.mark.parametrize("path", ["cpu", "native"])
def test_dropout_active_in_train_and_off_in_eval(path):
    paddle.seed(7)
    m = BertForSequenceClassification(
        tiny_config(hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3), ["a", "b"]
    )
    m.use_path(path)
    ids, types, mask = batch()
    m.eval()
    e1, e2 = (m(t(ids), t(types), t(mask)).numpy() for _ in range(2))
    np.testing.assert_array_equal(e1, e2)
    m.train()
    r1, r2 = (m(t(ids), t(types), t(mask)).numpy() for _ in range(2))
    assert np.abs(r1 - r2).max() > 1e-4
    assert np.abs(r1 - e1).max() > 1e-4


def test_classifier_forward_shape_and_labels():
    paddle.seed(8)
    m = BertForSequenceClassification(tiny_config(), ["neg", "neu", "pos"], dropout=0.0)
    ids, types, mask = batch()
    assert m(t(ids), t(types), t(mask)).shape == [3, 3]
    assert m.labels == ["neg", "neu", "pos"] and m.dropout == 0.0
    assert BertForSequenceClassification(tiny_config(hidden_dropout_prob=0.2), ["a"]).dropout == 0.2
    with pytest.raises(AutoftError, match="at least one label"):
        BertForSequenceClassification(tiny_config(), [])


def test_config_presets_and_dict_round_trip():
    large = BertConfig.preset("roberta-wwm-ext-large")
    assert (
        large.num_hidden_layers,
        large.hidden_size,
        large.num_attention_heads,
        large.intermediate_size,
    ) == (
        24,
        1024,
        16,
        4096,
    )
    assert large.vocab_size == 21128 and large.layer_norm_eps == 1e-12
    for name in ("roberta-wwm-ext", "bert-base-chinese"):
        c = BertConfig.preset(name)
        assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (
            12,
            768,
            12,
            3072,
        )
    c = tiny_config(layer_norm_eps=1e-5)
    assert BertConfig.from_dict({**c.to_dict(), "autoft_format": 1}) == c


def test_config_errors_name_the_problem():
    with pytest.raises(AutoftError, match="unknown model preset 'roberta-xl'"):
        BertConfig.preset("roberta-xl")
    with pytest.raises(AutoftError, match="missing hidden_size"):
        BertConfig.from_dict(
            {"vocab_size": 5, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 4}
        )
    with pytest.raises(AutoftError, match="hidden_size 10 is not divisible by num_attention_heads 4"):
        tiny_config(hidden_size=10)
    with pytest.raises(AutoftError, match="hidden_size='big' is not a valid int"):
        BertConfig.from_dict({**tiny_config().to_dict(), "hidden_size": "big"})
    with pytest.raises(AutoftError, match="hidden_act 'swish' not supported"):
        tiny_config(hidden_act="swish")


def expected_parameter_count(c: BertConfig, num_labels: int) -> int:
    h, i = c.hidden_size, c.intermediate_size
    embeddings = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h + 2 * h
    layer = (h * 3 * h + 3 * h) + (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    pooler = h * h + h
    return embeddings + c.num_hidden_layers * layer + pooler + h * num_labels + num_labels


def test_large_preset_builds_counts_parameters_and_runs_forward():
    paddle.seed(9)
    config = BertConfig.preset("roberta-wwm-ext-large")
    m = BertForSequenceClassification(config, ["a", "b"])
    n = m.num_parameters()
    assert n == expected_parameter_count(config, 2) == 325_524_482
    assert m.bert.num_parameters() == n - (1024 * 2 + 2)
    m.eval()
    with paddle.no_grad():
        logits = m(t(np.array([[101, 2769, 4263, 102, 0]])), attention_mask=t(np.array([[1, 1, 1, 1, 0]])))
    assert logits.shape == [1, 2]
    assert np.isfinite(logits.numpy()).all() and np.abs(logits.numpy()).max() > 0
    wqkv = dict(m.named_parameters())["bert.encoder.layers.23.attention.qkv.weight"]
    assert wqkv.shape == [1024, 3072]
    assert 0.015 < float(wqkv.std()) < 0.025  # BERT's N(0, 0.02) initialisation


def test_zeros_init_is_constant_and_cheap_to_overwrite():
    m = BertModel(tiny_config(), init="zeros")
    p = dict(m.named_parameters())
    assert float(p["embeddings.word_embeddings.weight"].abs().max()) == 0.0
    assert float(p["embeddings.layer_norm.weight"].min()) == 1.0
    with pytest.raises(AutoftError, match="model init 'xavier'"):
        BertModel(tiny_config(), init="xavier")


def test_path_is_chosen_once_from_the_placement_and_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOFT_FAST_CPU", "0")
    assert M.default_path() is M.NATIVE_PATH
    assert BertModel(tiny_config()).path is M.NATIVE_PATH
    monkeypatch.setenv("AUTOFT_FAST_CPU", "1")
    assert M.default_path() is M.CPU_PATH
    monkeypatch.delenv("AUTOFT_FAST_CPU")
    assert M.default_path(paddle.CPUPlace()) is M.CPU_PATH
    m = BertForSequenceClassification(tiny_config(), ["a", "b"])
    assert m.bert.path is M.CPU_PATH and m.bert.uses_cpu_path()  # parameters on this CPU
    # One call switches every layer; the environment read at construction no longer matters.
    m.use_path("native")
    layers = [x for x in m.sublayers() if isinstance(x, M._OnPath)]
    assert len(layers) == 1 + 2 * 2 + 1 and all(x.path is M.NATIVE_PATH for x in layers)
    monkeypatch.setenv("AUTOFT_FAST_CPU", "1")
    assert m.bert.path is M.NATIVE_PATH
    monkeypatch.delenv("AUTOFT_FAST_CPU")
    m.to(dtype="float32")  # not a move: the forced path stays
    assert all(x.path is M.NATIVE_PATH for x in layers)
    m.to(device="cpu")  # placement chooses again
    assert all(x.path is M.CPU_PATH for x in layers)
    m.bert.use_path("native").to("cpu")
    assert m.bert.path is M.CPU_PATH
    with pytest.raises(AutoftError, match="compute path 'fast': expected one of cpu, native"):
        m.use_path("fast")


@pytest.mark.parametrize("path", ["cpu", "native"])
def test_no_grad_inference_matches_the_autograd_forward(path):
    paddle.seed(11)
    m = BertForSequenceClassification(tiny_config(), ["a", "b"])
    m.eval()
    m.use_path(path)
    ids, types, mask = batch()
    with_graph = m(t(ids), t(types), t(mask))
    assert not with_graph.stop_gradient
    with paddle.no_grad():
        inference = m(t(ids), t(types), t(mask))
    np.testing.assert_allclose(inference.numpy(), with_graph.numpy(), rtol=0, atol=1e-6)


def test_cpu_dropout_keeps_rate_scale_and_seed():
    x = paddle.ones([400_000])
    paddle.seed(12)
    y = M.CPU_PATH.dropout(x, 0.1, True).numpy()
    assert abs(float((y == 0).mean()) - 0.1) < 0.003
    np.testing.assert_allclose(y[y != 0], 1 / 0.9, rtol=1e-6)
    assert abs(float(y.mean()) - 1.0) < 0.01
    paddle.seed(12)
    np.testing.assert_array_equal(M.CPU_PATH.dropout(x, 0.1, True).numpy(), y)
    assert M.CPU_PATH.dropout(x, 0.1, False) is x
    assert float(M.CPU_PATH.dropout(x, 1.0, True).abs().max()) == 0.0
    # The gradient flows through the kept elements only, scaled like the forward.
    xv = paddle.ones([1000])
    xv.stop_gradient = False
    out = M.CPU_PATH.dropout(xv, 0.3, True)
    out.sum().backward()
    np.testing.assert_array_equal(xv.grad.numpy(), out.numpy())


def test_classifier_around_an_existing_encoder_initialises_only_the_head():
    paddle.seed(13)
    enc = BertModel(tiny_config())
    before = {n: p.numpy().copy() for n, p in enc.named_parameters()}
    m = BertForSequenceClassification(enc.config, ["a", "b"], bert=enc)
    assert m.bert is enc
    for n, p in m.named_parameters():
        if n.startswith("bert."):
            np.testing.assert_array_equal(p.numpy(), before[n[len("bert.") :]])
    assert float(m.classifier.weight.abs().max()) > 0  # the head got BERT's random init
    with pytest.raises(AutoftError, match="encoder's config"):
        BertForSequenceClassification(tiny_config(hidden_size=32), ["a"], bert=enc)


@pytest.mark.parametrize("path", ["cpu", "native"])
def test_first_token_only_gives_the_full_models_pooled_output_and_gradients(path):
    # The classifier computes its last layer for [CLS] only; the pooled output, the logits and
    # every gradient must equal those of the full computation.
    paddle.seed(5)
    m = BertForSequenceClassification(tiny_config(num_hidden_layers=2, hidden_size=32), ["a", "b", "c"])
    m.eval()
    m.use_path(path)
    ids, types, mask = (t(a) for a in batch(seed=2))
    results = []
    for first_only in (False, True):
        m.clear_gradients()
        seq, pooled = m.bert(ids, types, mask, first_token_only=first_only)
        logits = m.classifier(pooled)
        ((logits**2).mean() + pooled.sum()).backward()
        grads = {n: p.grad.numpy().copy() for n, p in m.named_parameters() if p.grad is not None}
        results.append((seq.numpy(), pooled.numpy(), logits.numpy(), grads))
    (seq_full, pooled_full, logits_full, g_full), (seq_cls, pooled_cls, logits_cls, g_cls) = results
    assert seq_full.shape == (3, 9, 32) and seq_cls.shape == (3, 1, 32)
    _assert_close(seq_cls, seq_full[:, :1], "first token")
    _assert_close(pooled_cls, pooled_full, "pooled")
    _assert_close(logits_cls, logits_full, "logits")
    with paddle.no_grad():
        _assert_close(m(ids, types, mask).numpy(), logits_full, "classifier forward")
    # Every parameter that influences the pooled output gets a gradient, equal to the full one's.
    assert set(g_cls) == set(g_full) and len(g_full) == len(list(m.parameters()))
    for n in g_full:
        _assert_close(g_cls[n], g_full[n], n)
    assert np.abs(g_cls["bert.encoder.layers.1.ffn_in.weight"]).max() > 1e-6
