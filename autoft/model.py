"""BERT / RoBERTa-wwm-ext encoder and sequence classifier, in one readable file.

Read top to bottom: the config, two small CPU kernels with their own backward (why: see
docs/model.md), the two compute paths (the ops that differ), then one
``nn.Layer`` per concept (embeddings, attention, transformer layer, encoder, pooler, model,
classifier), then the "levels" used by discriminative fine-tuning.

Post-LayerNorm BERT: GELU (exact erf), LayerNorm eps from the config, padding masked out of
attention. Parameter names and shapes are the contract in ``docs/design.md`` (Paddle
orientation, Linear weight = [in, out], Q/K/V fused into one [H, 3H] projection).

Two compute paths give the same numbers (tests pin outputs and gradients), one object each
(``CPU_PATH``, ``NATIVE_PATH``) holding the ops that differ, attention included:
* the CPU path (default for a model on CPU): heads split and merged with split/concat instead
  of reshape+transpose copies, the additive attention mask expanded to the score shape once per
  batch, a Linear whose bias gradient is a GEMV, a LayerNorm with its own backward, dropout
  masks from 16-bit integers;
* the native path (default on GPU): Paddle's own ``F.linear``, ``F.layer_norm``, ``F.dropout``
  and attention kernels.
A model's path is chosen once, when it is built or moved with ``to()`` (``default_path``:
where its parameters live; ``AUTOFT_FAST_CPU=1`` / ``0`` forces the CPU / native path), and
``model.use_path("cpu" | "native")`` changes it for one model.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer

from autoft.errors import AutoftError

# Additive mask value for padded keys: what BERT/ERNIE used (finite, so fp16 on GPU is safe and
# a row that is all padding still gets a defined softmax).
MASK_VALUE = -10000.0

PRESETS = {
    "roberta-wwm-ext-large": dict(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
    ),
    "roberta-wwm-ext": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
    "bert-base-chinese": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}


@dataclass
class BertConfig:
    vocab_size: int = 21128
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise AutoftError(
                f"model config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ("gelu", "gelu_new", "relu"):
            raise AutoftError(
                f"model config: hidden_act {self.hidden_act!r} not supported (expected gelu or relu)"
            )

    @classmethod
    def preset(cls, name: str, **overrides) -> BertConfig:
        """Shape of a known checkpoint ("roberta-wwm-ext-large", "roberta-wwm-ext", "bert-base-chinese")."""
        if name not in PRESETS:
            raise AutoftError(f"unknown model preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        """Build from a dict; unknown keys are ignored, missing shape keys are an error."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
        )
        missing = [k for k in required if k not in d]
        if missing:
            raise AutoftError(f"model config is missing {', '.join(missing)}")
        kwargs = {}
        for k, v in d.items():
            if k in fields:
                kind = fields[k].type
                try:
                    kwargs[k] = (
                        {"int": int, "float": float, "str": str}[kind](v)
                        if v is not None
                        else fields[k].default
                    )
                except (TypeError, ValueError) as exc:
                    raise AutoftError(f"model config: {k}={v!r} is not a valid {kind}") from exc
        return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# CPU kernels with their own backward.
# Paddle 3.3 on CPU computes a bias gradient (a column sum over B*S rows) and LayerNorm's
# backward with slow single-threaded reductions/broadcasts; the same sums written as a GEMV
# (ones @ G) run in MKL and are ~100x faster. Each kernel returns None for the gradient of an
# input that has stop_gradient set: PyLayer requires it, and gradual unfreezing freezes params.
# ---------------------------------------------------------------------------------------------


def _column_sum(g2d: paddle.Tensor) -> paddle.Tensor:
    """Sum over rows as a GEMV (ones[N] @ G[N, C]) instead of a reduction kernel."""
    return paddle.matmul(paddle.ones([g2d.shape[0]], dtype=g2d.dtype), g2d)


def _addmm_linear(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """x @ w + b as one addmm: the GEMM starts from the bias, no separate broadcasting add."""
    y = paddle.addmm(bias, x.reshape([-1, x.shape[-1]]), weight)
    return y.reshape([*x.shape[:-1], weight.shape[-1]])


class _LinearGemvBias(PyLayer):
    """y = x @ w + b; forward one addmm, backward GEMMs and a GEMV for the bias."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.needs = (not x.stop_gradient, not weight.stop_gradient, not bias.stop_gradient)
        return _addmm_linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        need_x, need_w, need_b = ctx.needs
        g2d = grad.reshape([-1, grad.shape[-1]])
        gx = paddle.matmul(grad, weight, transpose_y=True) if need_x else None
        gw = paddle.matmul(x.reshape([-1, x.shape[-1]]), g2d, transpose_x=True) if need_w else None
        gb = _column_sum(g2d) if need_b else None
        return gx, gw, gb


try:  # layer_norm that also returns the row mean and variance (Paddle 2.x and 3.x)
    from paddle import _legacy_C_ops as _legacy_ops
except ImportError:  # pragma: no cover - future Paddle without legacy ops
    _legacy_ops = None


class _LayerNormOwnBackward(PyLayer):
    """LayerNorm over the last axis; native forward, backward from GEMVs and same-shape ops.

    With xhat = (x - mean) * rstd and g = dy * w:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); dw = sum_rows(dy * xhat); db = sum_rows(dy).
    Row means are GEMVs with w/H (mean(g) = dy @ (w/H)), column sums GEMVs with ones.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        h = x.shape[-1]
        if _legacy_ops is not None:
            y, _, var = _legacy_ops.layer_norm(x, weight, bias, "epsilon", eps, "begin_norm_axis", x.ndim - 1)
        else:
            y, var = F.layer_norm(x, h, weight, bias, eps), None
        ctx.save_for_backward(x, weight, var)
        ctx.eps = eps
        ctx.needs = (not x.stop_gradient, not weight.stop_gradient, not bias.stop_gradient)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, var = ctx.saved_tensor()
        need_x, need_w, need_b = ctx.needs
        h = x.shape[-1]
        x2 = x.reshape([-1, h])
        n = x2.shape[0]
        dy = grad.reshape([-1, h])
        # The normalised input again, from the native (fast) forward kernel.
        xhat = F.layer_norm(x2, h, epsilon=ctx.eps)
        dy_xhat = dy * xhat
        gw = _column_sum(dy_xhat) if need_w else None
        gb = _column_sum(dy) if need_b else None
        gx = None
        if need_x:
            if var is None:  # variance = mean((x - mean)^2), the mean as a GEMV
                centred = x2 - paddle.matmul(x2, paddle.full([h, 1], 1.0 / h, x2.dtype)).expand([n, h])
                var = paddle.matmul(centred * centred, paddle.full([h, 1], 1.0 / h, x2.dtype))
            rstd = paddle.rsqrt(var.reshape([n, 1]) + ctx.eps)
            w_over_h = (weight / h).reshape([h, 1])
            mean_g = paddle.matmul(dy, w_over_h) * rstd  # [N, 1]: rstd * mean(dy * w)
            mean_gx = paddle.matmul(dy_xhat, w_over_h) * rstd  # [N, 1]: rstd * mean(dy * w * xhat)
            # Row/column factors expanded to [N, H] first (a cheap copy): same-shape elementwise ops
            # are 3-7x faster on CPU than broadcasting ones.
            g = dy * weight.expand([n, h])
            gx = g * rstd.expand([n, h]) - mean_g.expand([n, h]) - xhat * mean_gx.expand([n, h])
            gx = gx.reshape(x.shape)
        return gx, gw, gb


# ---------------------------------------------------------------------------------------------
# The two compute paths. A model holds one (``BertModel.path``), chosen once when it is built or
# moved (``default_path``) and changed only by ``use_path``; its layers read it from their own
# ``path`` attribute, so no forward takes a path flag. Each path writes attention once.
# ---------------------------------------------------------------------------------------------


def _needs_grad(x: paddle.Tensor, layer: nn.Layer) -> bool:
    # Static graphs (jit export for the inference predictor) take the plain ops: the custom
    # backward kernels are dygraph PyLayers.
    return paddle.in_dynamic_mode() and paddle.is_grad_enabled() and not (
        x.stop_gradient and layer.weight.stop_gradient and layer.bias.stop_gradient
    )


def additive_mask(attention_mask: paddle.Tensor, dtype) -> paddle.Tensor:
    """[B, S] of 1 (token) / 0 (padding) -> the additive mask [B, 1, 1, S]: 0 / MASK_VALUE."""
    b, s = attention_mask.shape
    return ((1.0 - attention_mask.astype(dtype)) * MASK_VALUE).reshape([b, 1, 1, s])


class ComputePath:
    """The ops whose implementation differs between the paths; every other op is shared.

    ``prepare_mask`` turns the additive mask [B, 1, 1, S] into the layout this path's
    ``attention`` reads, once per batch. ``attention`` maps the fused Q|K|V projection
    [B, S, 3H] to the context [B, S_q, H] (S_q = 1 with ``first_only``: [CLS] queries only).
    """

    name = ""

    def linear(self, x: paddle.Tensor, layer: nn.Linear) -> paddle.Tensor:
        raise NotImplementedError

    def layer_norm(self, x: paddle.Tensor, layer: nn.LayerNorm) -> paddle.Tensor:
        raise NotImplementedError

    def dropout(self, x: paddle.Tensor, p: float, training: bool) -> paddle.Tensor:
        raise NotImplementedError

    def prepare_mask(self, additive: paddle.Tensor, num_heads: int) -> paddle.Tensor:
        raise NotImplementedError

    def attention(self, qkv, mask, num_heads: int, p: float, training: bool, first_only: bool):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name} compute path>"


class CpuPath(ComputePath):
    """Paddle's CPU kernels for broadcasting elementwise ops, permuting copies, column sums and
    LayerNorm's backward are far slower than its GEMMs (docs/model.md); this path avoids them."""

    name = "cpu"

    def linear(self, x, layer):
        if _needs_grad(x, layer):
            return _LinearGemvBias.apply(x, layer.weight, layer.bias)
        return _addmm_linear(x, layer.weight, layer.bias)  # inference: no autograd node needed

    def layer_norm(self, x, layer):
        if _needs_grad(x, layer):
            return _LayerNormOwnBackward.apply(x, layer.weight, layer.bias, layer._epsilon)
        return F.layer_norm(x, x.shape[-1], layer.weight, layer.bias, layer._epsilon)

    def dropout(self, x, p, training):
        """Inverted dropout (scale kept outputs by 1/(1-p) in training, identity in eval)."""
        if not training or p <= 0.0:
            return x
        if p >= 1.0:
            return F.dropout(x, p, training=True)
        # Paddle's CPU dropout draws one float per element from a slow generator (~10 ns each,
        # ~10% of a step); 16-bit integers from randint are ~3x cheaper end to end. The drop
        # probability is quantised to 1/65536 and the draws still follow paddle.seed.
        keep = paddle.randint(0, 65536, x.shape, dtype="int32") >= int(round(p * 65536))
        return x * (keep.astype(x.dtype) * (1.0 / (1.0 - p)))

    def prepare_mask(self, additive, num_heads):
        # Expanded to the score shape [heads*B, S, S] (head-major, like the split heads), so
        # every layer adds two same-shape tensors instead of broadcasting (65x slower on CPU).
        b, _, _, s = additive.shape
        return paddle.tile(additive.reshape([1, b, 1, s]), [num_heads, 1, s, 1]).reshape([num_heads * b, s, s])

    def attention(self, qkv, mask, num_heads, p, training, first_only):
        # Heads stacked along the batch axis ([heads*B, S, D], head-major). Splitting: one
        # transpose of [B*S, 3*heads, D] rows, whose D-long runs stay contiguous (block copies),
        # then 3 contiguous splits: 6% faster train steps at 12/768 than 3*heads narrow splits +
        # concats. (A [B, S, heads, D] -> [B, heads, S, D] permute is the slow one, 79x.)
        b, s, h3 = qkv.shape
        n, d = num_heads, h3 // (3 * num_heads)
        heads = qkv.reshape([b * s, 3 * n, d]).transpose([1, 0, 2])
        q, k, v = (t.reshape([n * b, s, d]) for t in paddle.split(heads, 3, axis=0))
        if first_only:
            q, mask = q[:, :1], mask[:, :1]
        q = q * (1.0 / math.sqrt(d))
        scores = paddle.matmul(q, k, transpose_y=True) + mask  # mask already [heads*B, S_q, S]
        probs = self.dropout(F.softmax(scores, axis=-1), p, training)
        ctx = paddle.matmul(probs, v)
        return paddle.concat(paddle.split(ctx, n, axis=0), axis=-1)  # merge: faster than a transpose


def _has_sdpa() -> bool:
    # Paddle >= 3.1 (``backend`` in the signature) selects among several SDPA kernels; older
    # versions use the explicit math below.
    fn = getattr(F, "scaled_dot_product_attention", None)
    return fn is not None and "backend" in inspect.signature(fn).parameters


USE_SDPA = _has_sdpa()


class NativePath(ComputePath):
    """Paddle's own ``F.linear``, ``F.layer_norm``, ``F.dropout`` and attention kernels (fused on GPU)."""

    name = "native"

    def linear(self, x, layer):
        return F.linear(x, layer.weight, layer.bias)

    def layer_norm(self, x, layer):
        return F.layer_norm(x, x.shape[-1], layer.weight, layer.bias, layer._epsilon)

    def dropout(self, x, p, training):
        if not training or p <= 0.0:
            return x
        return F.dropout(x, p, training=True)

    def prepare_mask(self, additive, num_heads):
        return additive  # [B, 1, 1, S], broadcast by the kernel

    def attention(self, qkv, mask, num_heads, p, training, first_only):
        b, s, h3 = qkv.shape
        d = h3 // (3 * num_heads)
        q, k, v = (t.reshape([b, s, num_heads, d]) for t in paddle.split(qkv, 3, axis=-1))
        if first_only:
            q = q[:, :1]
        sq = q.shape[1]
        p = p if training else 0.0
        mask = mask if mask.dtype == q.dtype else mask.astype(q.dtype)  # e.g. fp16 under AMP on GPU
        if USE_SDPA:  # layout [B, S, heads, D]: no transposes needed
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, training=training)
        else:
            q, k, v = (t.transpose([0, 2, 1, 3]) for t in (q, k, v))
            scores = paddle.matmul(q, k, transpose_y=True) * (1.0 / math.sqrt(d)) + mask
            probs = F.dropout(F.softmax(scores, axis=-1), p, training=training)
            ctx = paddle.matmul(probs, v).transpose([0, 2, 1, 3])
        return ctx.reshape([b, sq, num_heads * d])


CPU_PATH = CpuPath()
NATIVE_PATH = NativePath()
PATHS = {p.name: p for p in (CPU_PATH, NATIVE_PATH)}


def default_path(place=None) -> ComputePath:
    """The CPU path for parameters on a CPU (``place``; default: Paddle's current device), else the
    native one (custom PyLayers never run on a GPU). ``AUTOFT_FAST_CPU=1`` / ``0`` forces the
    CPU / native path."""
    env = os.environ.get("AUTOFT_FAST_CPU", "").strip()
    if env in ("0", "1"):
        return CPU_PATH if env == "1" else NATIVE_PATH
    if place is None:
        on_cpu = paddle.device.get_device().startswith("cpu")
    else:  # a tensor's place (Paddle 2.6's CPUPlace objects lack is_cpu_place)
        on_cpu = place.is_cpu_place() if hasattr(place, "is_cpu_place") else isinstance(place, paddle.CPUPlace)
    return CPU_PATH if on_cpu else NATIVE_PATH


def resolve_path(path) -> ComputePath:
    """A ComputePath from itself or its name ("cpu", "native")."""
    if isinstance(path, ComputePath):
        return path
    if path not in PATHS:
        raise AutoftError(f"compute path {path!r}: expected one of {', '.join(PATHS)}")
    return PATHS[path]


# ---------------------------------------------------------------------------------------------
# The model.
# ---------------------------------------------------------------------------------------------


def _init_attrs(config: BertConfig, init: str):
    """(weight_attr, bias_attr) for Linear/Embedding: BERT's N(0, 0.02) and zero bias.

    init="zeros" fills constants only: cheap for a model whose weights are loaded right after.
    """
    if init == "zeros":
        w = nn.initializer.Constant(0.0)
    elif init == "normal":
        w = nn.initializer.Normal(0.0, config.initializer_range)
    else:
        raise AutoftError(f"model init {init!r}: expected 'normal' or 'zeros'")
    return paddle.ParamAttr(initializer=w), paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))


class _OnPath(nn.Layer):
    """A layer whose ops come from ``self.path``, which ``BertModel.use_path`` sets."""

    path: ComputePath = CPU_PATH  # replaced by BertModel.__init__ before any forward


class BertEmbeddings(_OnPath):
    def __init__(self, config: BertConfig, init: str = "normal"):
        super().__init__()
        w, _ = _init_attrs(config, init)
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, weight_attr=w)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h, weight_attr=w)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h, weight_attr=w)
        self.layer_norm = nn.LayerNorm(h, epsilon=config.layer_norm_eps)
        self.dropout = config.hidden_dropout_prob

    def forward(self, input_ids, token_type_ids):
        b, s = input_ids.shape
        # 0-based BERT positions (what HFL's checkpoints were trained with). Looked up per row,
        # [B, S]: a same-shape add whose gradient is an embedding scatter, where broadcasting
        # [S, H] over the batch would need a slow batch reduction on CPU.
        position_ids = paddle.arange(s, dtype="int64").expand([b, s])
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        x = self.path.layer_norm(x, self.layer_norm)
        return self.path.dropout(x, self.dropout, self.training)


class BertAttention(_OnPath):
    """Multi-head self-attention with one fused Q|K|V projection."""

    def __init__(self, config: BertConfig, init: str = "normal"):
        super().__init__()
        w, b = _init_attrs(config, init)
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.qkv = nn.Linear(h, 3 * h, weight_attr=w, bias_attr=b)
        self.out = nn.Linear(h, h, weight_attr=w, bias_attr=b)
        self.dropout = config.attention_probs_dropout_prob

    def forward(self, x, mask, first_only: bool = False):
        """[B, S, H] -> [B, S, H]; ``first_only``: queries of the first token only -> [B, 1, H]."""
        path = self.path
        qkv = path.linear(x, self.qkv)
        ctx = path.attention(qkv, mask, self.num_heads, self.dropout, self.training, first_only)
        return path.linear(ctx, self.out)


class BertLayer(_OnPath):
    """One post-LN transformer layer: attention, add & norm, FFN, add & norm."""

    def __init__(self, config: BertConfig, init: str = "normal"):
        super().__init__()
        w, b = _init_attrs(config, init)
        h, i = config.hidden_size, config.intermediate_size
        self.attention = BertAttention(config, init)
        self.attention_norm = nn.LayerNorm(h, epsilon=config.layer_norm_eps)
        self.ffn_in = nn.Linear(h, i, weight_attr=w, bias_attr=b)
        self.ffn_out = nn.Linear(i, h, weight_attr=w, bias_attr=b)
        self.ffn_norm = nn.LayerNorm(h, epsilon=config.layer_norm_eps)
        self.dropout = config.hidden_dropout_prob
        self.act = config.hidden_act

    def forward(self, x, mask, first_only: bool = False):
        """``first_only``: the output of the first token only, [B, 1, H] (keys/values still all tokens)."""
        path = self.path
        a = path.dropout(self.attention(x, mask, first_only), self.dropout, self.training)
        if first_only:
            x = x[:, :1]
        x = path.layer_norm(x + a, self.attention_norm)
        f = path.linear(x, self.ffn_in)
        f = F.relu(f) if self.act == "relu" else F.gelu(f, approximate=self.act == "gelu_new")
        f = path.dropout(path.linear(f, self.ffn_out), self.dropout, self.training)
        return path.layer_norm(x + f, self.ffn_norm)


class BertEncoder(nn.Layer):
    def __init__(self, config: BertConfig, init: str = "normal"):
        super().__init__()
        self.layers = nn.LayerList([BertLayer(config, init) for _ in range(config.num_hidden_layers)])

    def forward(self, x, mask, first_only: bool = False):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, first_only and i == last)
        return x


class BertPooler(_OnPath):
    """tanh(dense(first token)): the [CLS] summary the classifier reads."""

    def __init__(self, config: BertConfig, init: str = "normal"):
        super().__init__()
        w, b = _init_attrs(config, init)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, weight_attr=w, bias_attr=b)

    def forward(self, x):
        return paddle.tanh(self.path.linear(x[:, 0], self.dense))


class BertModel(nn.Layer):
    """The encoder: forward(input_ids, token_type_ids=None, attention_mask=None) -> (sequence, pooled).

    ``attention_mask``: 1 for tokens, 0 for padding (default: all ones). ``init``: "normal"
    (BERT's initialisation) or "zeros" (constants: cheap when weights are loaded next).
    The compute path (``.path``) is chosen here and in ``to()`` by ``default_path``;
    ``use_path("cpu" | "native")`` forces one.
    """

    prefix = ""

    def __init__(self, config: BertConfig, init: str = "normal"):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config, init)
        self.encoder = BertEncoder(config, init)
        self.pooler = BertPooler(config, init)
        self.use_path(default_path(self.embeddings.word_embeddings.weight.place))

    @property
    def path(self) -> ComputePath:
        return self.embeddings.path

    def use_path(self, path) -> BertModel:
        """Run on ``path`` (a ComputePath or "cpu" / "native") from now on; returns the model."""
        path = resolve_path(path)
        for layer in self.sublayers(include_self=False):
            if isinstance(layer, _OnPath):
                layer.path = path
        return self

    def to(self, *args, **kwargs):
        """Paddle's ``Layer.to``, then the compute path for where the parameters now live."""
        out = super().to(*args, **kwargs)
        self.use_path(default_path(self.embeddings.word_embeddings.weight.place))
        return out

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, first_token_only: bool = False):
        """-> (sequence_output [B, S, H], pooled [B, H]).

        ``first_token_only=True``: the last layer is computed for the first ([CLS]) token only, so
        sequence_output is [B, 1, H]; the pooled output is the same (it reads only that token),
        at ~3/4 less work in the last layer (its FFN, output projection and norms run on one row).
        """
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(input_ids)
        if attention_mask is None:
            attention_mask = paddle.ones_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        mask = self.path.prepare_mask(additive_mask(attention_mask, x.dtype), self.config.num_attention_heads)
        x = self.encoder(x, mask, first_token_only)
        return x, self.pooler(x)

    def uses_cpu_path(self) -> bool:
        """Whether this model runs the CPU path (custom kernels) rather than the native one."""
        return self.path is CPU_PATH

    def levels(self) -> list[list[str]]:
        return _levels(self.config.num_hidden_layers, self.prefix, classifier=False)

    def layer_of(self, name: str) -> int:
        return _layer_of(name, self.config.num_hidden_layers)

    def num_parameters(self) -> int:
        return sum(int(p.size) for p in self.parameters())


class BertForSequenceClassification(nn.Layer):
    """BertModel + dropout + Linear on the pooled output; ``labels`` are the class names in id order.

    ``bert``: an existing encoder to use (e.g. from ``load_pretrained``), so that only the new
    head is initialised; its config must equal ``config``.
    """

    prefix = "bert."

    def __init__(
        self,
        config: BertConfig,
        labels: Sequence[str],
        dropout: Optional[float] = None,
        init: str = "normal",
        bert: Optional[BertModel] = None,
    ):
        super().__init__()
        if len(labels) < 1:
            raise AutoftError("classifier needs at least one label")
        if bert is not None and bert.config != config:
            raise AutoftError(f"classifier: the encoder's config {bert.config} differs from {config}")
        self.config = config
        self.labels = [str(x) for x in labels]
        self.bert = BertModel(config, init) if bert is None else bert
        self.dropout = config.hidden_dropout_prob if dropout is None else dropout
        w, b = _init_attrs(config, init)
        self.classifier = nn.Linear(config.hidden_size, len(self.labels), weight_attr=w, bias_attr=b)

    def use_path(self, path) -> BertForSequenceClassification:
        """Run on ``path`` ("cpu" / "native"); the head always follows the encoder's path."""
        self.bert.use_path(path)
        return self

    def to(self, *args, **kwargs):
        out = super().to(*args, **kwargs)
        self.bert.use_path(default_path(self.classifier.weight.place))
        return out

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        # The head reads only the pooled [CLS] output: the last layer skips the other tokens.
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask, first_token_only=True)
        path = self.bert.path
        return path.linear(path.dropout(pooled, self.dropout, self.training), self.classifier)

    def levels(self) -> list[list[str]]:
        return _levels(self.config.num_hidden_layers, self.prefix, classifier=True)

    def layer_of(self, name: str) -> int:
        return _layer_of(name, self.config.num_hidden_layers)

    def num_parameters(self) -> int:
        return sum(int(p.size) for p in self.parameters())


# ---------------------------------------------------------------------------------------------
# Levels for discriminative fine-tuning (PaddleHub 1.4, reference/autofinetune.md §8).
# ---------------------------------------------------------------------------------------------


def _levels(num_layers: int, prefix: str, classifier: bool) -> list[list[str]]:
    """Parameter names grouped by op-graph depth as PaddleHub 1.4 computed it, TOP FIRST.

    PaddleHub's rule (strategy.get_depth_parameter): an op's depth is 1 + the max depth of the
    ops producing its inputs; a parameter's depth is the min depth of the ops consuming it;
    then a parameter at the next-deeper depth whose name shares the prefix before the first
    "." (``pooled_fc.w_0`` / ``pooled_fc.b_0``) is merged into the shallower level.
    Applied to PaddleHub 1.x's static BERT graph (bottom to top):
    - ``word_embedding``, ``pos_embedding``, ``sent_embedding`` are read by three parallel
      lookup ops whose inputs are feeds: all at the same depth, so ONE level (embeddings);
    - the two adds, then ``pre_encoder_layer_norm_{scale,bias}``: one layer_norm op consumes
      both, so its own level;
    - per layer: the q/k/v ``mul`` ops read the same input (one depth; each fc's bias is one
      depth deeper but shares its weight's prefix, so it merges): ONE level for Q|K|V; then
      the attention output fc, the post-attention LayerNorm, FFN in, FFN out, post-FFN
      LayerNorm: six levels per layer;
    - ``pooled_fc.{w_0,b_0}``: one level;
    - the classifier head ``cls_out_w`` / ``cls_out_b``: the weight is read by ``mul``, the
      bias one depth deeper by ``elementwise_add``, and their names share no "." prefix, so
      1.4 kept them as TWO levels, the bias being the top one. We keep that (the seed's
      blocks/factor were tuned on this level count: 6L + 5 with a classifier, 6L + 3 without).
    """
    out: list[list[str]] = []
    if classifier:
        out += [["classifier.bias"], ["classifier.weight"]]

    def wb(name):
        return [f"{prefix}{name}.weight", f"{prefix}{name}.bias"]

    out.append(wb("pooler.dense"))
    for i in reversed(range(num_layers)):
        p = f"encoder.layers.{i}."
        for part in ("ffn_norm", "ffn_out", "ffn_in", "attention_norm", "attention.out", "attention.qkv"):
            out.append(wb(p + part))
    out.append(wb("embeddings.layer_norm"))
    out.append(
        [
            f"{prefix}embeddings.word_embeddings.weight",
            f"{prefix}embeddings.position_embeddings.weight",
            f"{prefix}embeddings.token_type_embeddings.weight",
        ]
    )
    return out


_LAYER_RE = re.compile(r"^(?:bert\.)?encoder\.layers\.(\d+)\.")


def _layer_of(name: str, num_layers: int) -> int:
    """Embeddings 0, encoder layer i -> i + 1, pooler and classifier -> num_layers + 1."""
    m = _LAYER_RE.match(name)
    if m:
        return int(m.group(1)) + 1
    bare = name[len("bert.") :] if name.startswith("bert.") else name
    if bare.startswith("embeddings."):
        return 0
    if bare.startswith("pooler.") or name.startswith("classifier."):
        return num_layers + 1
    raise AutoftError(f"layer_of: {name!r} is not a parameter of this model")
