"""Discriminative LR multipliers, schedules, unfreezing and weight decay (autoft/optim.py)."""

import contextlib
import math

import numpy as np
import pytest

from autoft import optim
from autoft.errors import AutoftError
from autoft.model import BertConfig, ParamSpec, levels_of, param_table

# ---------------------------------------------------------------- schedule


def test_warmup_linear_decay_pins_the_four_points():
    # T=100, warmup 0.1 -> W=10, start_point 0.9 -> S=90.
    lr = 1e-3
    f = optim.make_schedule(lr, 100, warmup=0.1, start_point=0.9, end_lr=0.0)
    assert f(0) == 0.0
    assert f(5) == pytest.approx(lr * 0.5)
    assert f(9) == pytest.approx(lr * 0.9)
    assert f(10) == pytest.approx(lr)  # end of warmup
    assert f(89) == pytest.approx(lr)  # plateau W <= t < S keeps the warmed-up LR
    assert f(90) == pytest.approx(lr * 0.1)  # start of decay: jumps to the line from step 0
    assert f(99) == pytest.approx(lr * 0.01)  # last step
    assert f(100) == pytest.approx(0.0)


def test_warmup_linear_decay_end_lr_and_no_warmup():
    f = optim.make_schedule(2.0, 10, warmup=0.0, start_point=0.5, end_lr=1.0)
    assert f(0) == 2.0
    assert f(4) == 2.0
    assert f(5) == pytest.approx((2.0 - 1.0) * 0.5 + 1.0)
    assert f(10) == pytest.approx(1.0)


def test_slanted_triangular_overrides_and_peaks_at_cut():
    f = optim.make_schedule(1.0, 100, warmup=0.1, cut_fraction=0.1, ratio=32)
    assert f(0) == pytest.approx(1 / 32)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx((1 + 0.5 * 31) / 32)
    assert f(100) == pytest.approx(1 / 32)


def test_noam():
    f = optim.make_schedule(1.0, 100, warmup=0.04, use_noam=True)  # W = 4
    assert f(0) == pytest.approx(math.sqrt(4) * 1 * 4 ** -1.5)
    assert f(3) == pytest.approx(math.sqrt(4) * 4 ** -0.5)  # t = 4 = W: the peak, = base
    assert f(15) == pytest.approx(math.sqrt(4) * 16 ** -0.5)


# ---------------------------------------------------------------- multipliers


def test_level_multipliers_small_hand_computed_case():
    # 7 levels, 3 blocks -> L = ceil(7/3) = 3: c=0 ->1; c=1..3 -> f^0; c=4..6 -> f^-1.
    m = optim.level_multipliers(7, 3, 2.0)
    assert m == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert optim.level_multipliers(7, 0, 2.0) == [1.0] * 7
    assert optim.level_multipliers(7, -1, 2.0) == [1.0] * 7


def test_level_multipliers_seed_blocks16_on_24_layer_levels():
    # A 24-layer BERT classifier: 6 levels per layer + embeddings, embedding LayerNorm,
    # pooler, classifier weight, classifier bias = 149 levels; blocks 16 -> L = ceil(149/16) = 10.
    n, f = 6 * 24 + 5, 1.11736168682
    m = optim.level_multipliers(n, 16, f)
    assert len(m) == 149
    assert m[0] == 1.0 and m[1] == 1.0 and m[10] == 1.0
    assert m[11] == pytest.approx(f ** -1)
    assert m[20] == pytest.approx(f ** -1)
    assert m[21] == pytest.approx(f ** -2)
    assert m[141] == pytest.approx(f ** -14)  # (141-1)//10 = 14
    assert m[148] == pytest.approx(f ** -14)  # the embeddings: (148-1)//10 = 14
    assert len(set(optim.level_block_index(n, 16))) == 15  # blocks 0..14


def test_layer_multiplier():
    assert optim.layer_multiplier(25, 25, 2.0) == 1.0
    assert optim.layer_multiplier(0, 25, 2.0) == 2.0 ** -25


# ---------------------------------------------------------------- with a tiny paddle model


def _tiny_model():
    import paddle

    paddle.seed(0)

    class Tiny(paddle.nn.Layer):
        """3 'layers': emb (0), hidden linear + LayerNorm (1), head (2)."""

        def __init__(self):
            super().__init__()
            self.emb = paddle.nn.Linear(4, 4)
            self.hidden = paddle.nn.Linear(4, 4)
            self.layer_norm = paddle.nn.LayerNorm(4)
            self.head = paddle.nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.layer_norm(self.hidden(self.emb(x))))

        def param_table(self):
            # level (top first), layer, decay: biases and the LayerNorm get none.
            rows = {"head": (0, 2), "layer_norm": (1, 1), "hidden": (2, 1), "emb": (3, 0)}
            return [ParamSpec(n, tuple(p.shape), rows[n.split(".")[0]][0], rows[n.split(".")[0]][1],
                              n.endswith("weight") and not n.startswith("layer_norm"))
                    for n, p in self.named_parameters()]

        def levels(self):
            return levels_of(self.param_table())

    return Tiny()


def _snapshot(model):
    return {n: p.numpy().copy() for n, p in model.named_parameters()}


def test_param_groups_apply_multipliers_in_a_real_adamw_step():
    import paddle

    model = _tiny_model()
    # 4 levels, 2 blocks -> L = 2: multipliers 1, 1, 1, 1/f.
    groups, infos = optim.param_groups(model, blocks=2, factor=4.0, weight_decay=0.0)
    by_name = {n: i.multiplier for i in infos for n in i.param_names}
    assert by_name["head.weight"] == 1.0 and by_name["hidden.bias"] == 1.0
    assert by_name["emb.weight"] == 0.25
    opt = paddle.optimizer.AdamW(learning_rate=0.01, parameters=groups, weight_decay=0.0)
    before = _snapshot(model)
    loss = model(paddle.randn([8, 4])).sum()
    loss.backward()
    opt.step()
    after = _snapshot(model)
    # The first Adam step moves every coordinate by ~lr * multiplier (m/sqrt(v) = sign(g)).
    head = np.abs(after["head.bias"] - before["head.bias"])
    emb = np.abs(after["emb.bias"] - before["emb.bias"])
    np.testing.assert_allclose(head, 0.01, rtol=1e-3)
    np.testing.assert_allclose(emb, 0.0025, rtol=1e-3)


def test_layer_mode_multipliers():
    model = _tiny_model()
    _, infos = optim.param_groups(model, blocks=1, factor=2.0, mode="layers")
    by_name = {n: i.multiplier for i in infos for n in i.param_names}
    assert by_name["head.weight"] == 1.0
    assert by_name["layer_norm.bias"] == 0.5
    assert by_name["emb.weight"] == 0.25
    with pytest.raises(AutoftError, match="dis_mode"):
        optim.param_groups(model, 1, 2.0, mode="blocks")


def test_weight_decay_skips_bias_and_layer_norm():
    import paddle

    model = _tiny_model()
    groups, infos = optim.param_groups(model, blocks=0, factor=1.0, weight_decay=0.5)
    no_decay = {n for i in infos if i.weight_decay == 0.0 for n in i.param_names}
    assert no_decay == {"head.bias", "layer_norm.weight", "layer_norm.bias", "hidden.bias", "emb.bias"}
    opt = paddle.optimizer.AdamW(learning_rate=0.1, parameters=groups, weight_decay=0.5)
    before = _snapshot(model)
    # A zero gradient makes the Adam update zero: only decoupled decay moves parameters.
    (model(paddle.zeros([2, 4])) * 0.0).sum().backward()
    opt.step()
    after = _snapshot(model)
    for n in before:
        if n in no_decay:
            np.testing.assert_array_equal(after[n], before[n])
        else:
            np.testing.assert_allclose(after[n], before[n] * (1 - 0.1 * 0.5), rtol=1e-5)


def test_levels_must_cover_every_parameter():
    model = _tiny_model()
    table = model.param_table()
    model.param_table = lambda: table[-2:]
    with pytest.raises(AutoftError, match="in no level"):
        optim.param_groups(model, 2, 1.1)
    model.param_table = lambda: [*table, ParamSpec("emb.bias", (4,), 0, 2, False)]
    with pytest.raises(AutoftError, match=r"'emb.bias' appears in levels 0 and 3"):
        optim.param_groups(model, 2, 1.1)


# ---------------------------------------------------------------- unfreezing


def test_gradual_unfreezing_order():
    # 10 levels over 3 epochs: top 3, then top 6, then all.
    assert [optim.trainable_level_count(10, 3, e) for e in (1, 2, 3, 4)] == [3, 6, 10, 10]
    assert optim.trainable_level_count(10, 0, 1) == 10
    model = _tiny_model()
    frozen = optim.apply_unfreezing(model, 1)
    assert set(frozen) == {"layer_norm.weight", "layer_norm.bias", "hidden.weight", "hidden.bias",
                           "emb.weight", "emb.bias"}
    params = dict(model.named_parameters())
    assert not params["head.weight"].stop_gradient and params["emb.weight"].stop_gradient
    optim.apply_unfreezing(model, 3)
    assert params["hidden.bias"].stop_gradient is False and params["emb.bias"].stop_gradient is True
    optim.apply_unfreezing(model, 4)
    assert not any(p.stop_gradient for p in params.values())


def test_frozen_levels_do_not_move_in_a_step():
    import paddle

    model = _tiny_model()
    groups, _ = optim.param_groups(model, blocks=0, factor=1.0)
    opt = paddle.optimizer.AdamW(learning_rate=0.01, parameters=groups)
    optim.apply_unfreezing(model, 2)
    before = _snapshot(model)
    model(paddle.randn([4, 4])).sum().backward()
    opt.step()
    after = _snapshot(model)
    assert np.array_equal(after["emb.weight"], before["emb.weight"])
    assert np.array_equal(after["hidden.bias"], before["hidden.bias"])
    assert not np.array_equal(after["head.bias"], before["head.bias"])


# ---------------------------------------------------------------- the large model's groups, frozen


class _TableOnly:
    """named_parameters() and param_table() of a model that is never built (325M parameters)."""

    def __init__(self, table):
        self._table = table

    def param_table(self):
        return self._table

    def named_parameters(self):
        return [(p.name, type("P", (), {"stop_gradient": False})()) for p in self._table]


@pytest.mark.parametrize("blocks,factor,mode", [(16, 1.11736168682, "levels"), (3, 2.6, "levels"),
                                                (0, 1.0, "levels"), (1, 1.05, "layers")])
def test_large_classifier_groups_and_lrs_equal_the_pre_table_rule(blocks, factor, mode):
    """Groups, multipliers and decay on RoBERTa-wwm-ext-large's 149 levels, against the rule as
    written before the parameter table (frozen copies in test_param_table.py)."""
    from test_param_table import frozen_layer_of, frozen_levels, frozen_no_weight_decay

    table = param_table(BertConfig.preset("roberta-wwm-ext-large"), 15)
    _, infos = optim.param_groups(_TableOnly(table), blocks, factor, mode, weight_decay=0.01)
    got = {n: (i.name, i.multiplier, i.weight_decay) for i in infos for n in i.param_names}
    levels = frozen_levels(24, "bert.", classifier=True)
    mults = optim.level_multipliers(len(levels), blocks, factor)
    index = optim.level_block_index(len(levels), blocks)
    want = {}
    for level, mult, b in zip(levels, mults, index):
        for n in level:
            if mode == "layers":
                layer = frozen_layer_of(n, 24)
                key, mult = f"layer{layer}", (optim.layer_multiplier(layer, 25, factor) if blocks > 0 else 1.0)
            else:
                key = f"block{b}"
            decay = 0.0 if frozen_no_weight_decay(n) else 0.01
            want[n] = (key + ("/no_decay" if decay == 0.0 else ""), mult, decay)
    assert got == want
    if mode == "levels" and blocks == 16:
        assert len({b for b in index}) == 15  # L = ceil(149/16) = 10: blocks 0..14


# ---------------------------------------------------------------- lr_ratio: why parameter groups stay


def _adamw_run(paddle, weight_decay: float, fused_check=None, steps: int = 3):
    """A 2-layer model trained `steps` AdamW steps at a changing global LR; the first layer's
    multiplier 0.25 given as a parameter group, or as lr_ratio when ``fused_check`` (a context
    that lets Paddle's device check pass while the optimizer is built) is given."""
    paddle.seed(0)
    low, top = paddle.nn.Linear(4, 3), paddle.nn.Linear(3, 2)
    ratio = {p.name: 0.25 for p in low.parameters()}
    if fused_check is not None:
        with fused_check:
            opt = paddle.optimizer.AdamW(learning_rate=0.01, parameters=low.parameters() + top.parameters(),
                                         weight_decay=weight_decay, lr_ratio=lambda p: ratio.get(p.name, 1.0))
    else:
        opt = paddle.optimizer.AdamW(learning_rate=0.01, weight_decay=weight_decay, parameters=[
            {"params": low.parameters(), "learning_rate": 0.25}, {"params": top.parameters()}])
    x = paddle.to_tensor(np.random.RandomState(0).randn(5, 4).astype("float32"))
    start = [p.numpy().copy() for p in low.parameters()]
    grads = []
    for step in range(steps):
        opt.set_lr(0.01 * (step + 1))
        top(low(x)).sum().backward()
        grads.append([p.grad.numpy().copy() for p in low.parameters()])
        opt.step()
        opt.clear_grad()
    return start, grads, [p.numpy() for p in low.parameters()]


def _numpy_adamw(start, grads, lr_mult, weight_decay):
    """Paddle's AdamW update (decoupled decay first, bias-corrected Adam step, eps 1e-8), in float64."""
    out = []
    for i, p in enumerate(start):
        p, m, v = p.astype(np.float64), 0.0, 0.0
        for t, g in enumerate(grads, start=1):
            lr = 0.01 * t * lr_mult
            g = g[i].astype(np.float64)
            p = p * (1 - lr * weight_decay)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            p = p - lr / (1 - 0.9 ** t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** t) + 1e-8)
        out.append(p)
    return out


def test_parameter_groups_give_the_multiplied_adamw_update():
    import paddle

    start, grads, got = _adamw_run(paddle, weight_decay=0.1)
    for a, b in zip(got, _numpy_adamw(start, grads, 0.25, 0.1)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_lr_ratio_on_cpu_is_not_a_learning_rate_multiplier(monkeypatch, weight_decay):
    """Why autoft keeps parameter groups everywhere (docs/finetune.md).

    Paddle (2.6.2 .. 3.3.1) refuses ``lr_ratio`` unless it was built with CUDA/XPU. With that
    Python-side check patched, the CPU kernel runs and proves it does not multiply the LR: it
    scales only the decoupled weight decay by the ratio (no effect at all without decay), the
    Adam step keeps the full LR. So the fused path cannot be exercised on CPU, and a GPU build
    running on CPU (``--use_gpu False``) would pass Paddle's check and train wrongly. The GPU
    kernel (lr x ratio for both terms) is untested here. If this test fails, a Paddle release
    changed the CPU kernel: revisit the choice in optim.py.
    """
    import paddle
    from paddle.optimizer import adamw

    with pytest.raises(NotImplementedError, match="lr_ratio"):  # Paddle's own check, unpatched
        _adamw_run(paddle, weight_decay, fused_check=contextlib.nullcontext())

    @contextlib.contextmanager
    def cuda_check_passes():
        with monkeypatch.context() as patch:
            patch.setattr(adamw.core, "is_compiled_with_cuda", lambda: True)
            yield

    start, grads, got = _adamw_run(paddle, weight_decay, fused_check=cuda_check_passes())
    want = _numpy_adamw(start, grads, 0.25, weight_decay)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, want)) > 1e-3  # not the multiplied update
    # What the CPU kernel does: decay with lr x ratio, Adam step with the full LR.
    for i, p in enumerate(start):
        p, m, v = p.astype(np.float64), 0.0, 0.0
        for t, g in enumerate(grads, start=1):
            lr, g = 0.01 * t, g[i].astype(np.float64)
            p = p * (1 - lr * 0.25 * weight_decay)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            p = p - lr / (1 - 0.9 ** t) * m / (np.sqrt(v) / np.sqrt(1 - 0.999 ** t) + 1e-8)
        np.testing.assert_allclose(got[i], p, rtol=0, atol=1e-6)
