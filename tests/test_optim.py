"""Discriminative LR multipliers, schedules, unfreezing and weight decay (autoft/optim.py)."""

import math

import numpy as np
import pytest

from autoft import optim
from autoft.errors import AutoftError

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

        def levels(self):
            return [["head.weight", "head.bias"], ["layer_norm.weight", "layer_norm.bias"],
                    ["hidden.weight", "hidden.bias"], ["emb.weight", "emb.bias"]]

        def layer_of(self, name):
            return {"emb": 0, "hidden": 1, "layer_norm": 1, "head": 2}[name.split(".")[0]]

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
    model.levels = lambda: [["head.weight", "head.bias"]]
    with pytest.raises(AutoftError, match="in no level"):
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
