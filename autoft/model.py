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
import functools
import inspect
import math
import os
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


ACTIVATIONS = ("gelu", "gelu_new", "relu")  # what BertLayer implements
SHAPE_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


@dataclass
class BertConfig:
    """The model's shape and hyperparameters: the one place that states their defaults and checks.

    Every config (ours, Hugging Face's, PaddleNLP's, a PaddleHub module's) becomes one through
    :meth:`from_dict`; the fields are the BERT config keys those formats share.
    """

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
        for k in (*SHAPE_KEYS, "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, k)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AutoftError(f"model config: {k} must be a positive integer, found {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise AutoftError(
                f"model config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise AutoftError(
                f"model config: hidden_act {self.hidden_act!r} not supported; expected one of {', '.join(ACTIVATIONS)}"
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
    def from_dict(cls, d: dict, source: Optional[str] = None) -> BertConfig:
        """Build from a dict of config keys; unknown keys are ignored, a None value takes the default.

        The five shape keys are required. ``source`` (e.g. the file's path) starts every message.
        """
        try:
            missing = [k for k in SHAPE_KEYS if k not in d]
            if missing:
                raise AutoftError(
                    f"model config is missing {', '.join(missing)}; expected the BERT shape keys {', '.join(SHAPE_KEYS)}"
                )
            fields = {f.name: f for f in dataclasses.fields(cls)}
            return cls(**{k: _config_value(k, v, fields[k]) for k, v in d.items() if k in fields})
        except AutoftError as exc:
            if source is None:
                raise
            raise AutoftError(f"{source}: {exc}") from None


def _config_value(key: str, value, field: dataclasses.Field):
    """``value`` as the field's type (an int given as 1024.0 or "1024" is accepted); None -> default."""
    if value is None:
        return field.default
    kind = {"int": int, "float": float, "str": str}[field.type]
    try:
        if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
            raise ValueError(value)
        return int(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError, OverflowError):
        raise AutoftError(f"model config: {key}={value!r} is not a valid {field.type}") from None


# ---------------------------------------------------------------------------------------------
# The parameter table: every parameter's name, shape, PaddleHub level, layer and weight decay.
# levels(), layer_of(), weight-decay groups (optim.py), the shapes foreign weights are checked
# against (autoft/weights) and the encoder prefix of a classifier checkpoint all read it.
# ---------------------------------------------------------------------------------------------

ENCODER_PREFIX = "bert."  # where a classifier keeps its encoder's parameters

# One encoder layer's modules, bottom to top (the order of its ops): (name, kind).
LAYER_MODULES = (
    ("attention.qkv", "linear"),
    ("attention.out", "linear"),
    ("attention_norm", "norm"),
    ("ffn_in", "linear"),
    ("ffn_out", "linear"),
    ("ffn_norm", "norm"),
)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: ``level`` counts PaddleHub 1.4's op-depth levels from the top (0 = the
    classifier bias, or the pooler of a bare encoder); ``layer`` is 0 for the embeddings,
    i + 1 for encoder layer i, L + 1 for pooler and classifier; ``decay``: weight decay
    applies (not to biases and LayerNorm parameters, as in PaddleHub and BERT)."""

    name: str
    shape: tuple
    level: int
    layer: int
    decay: bool


def param_table(config: BertConfig, num_labels: Optional[int] = None) -> list[ParamSpec]:
    """Every parameter of ``BertModel(config)`` (``num_labels`` None: names without a prefix)
    or of a ``BertForSequenceClassification`` with ``num_labels`` classes (encoder under
    ``bert.``), in ``named_parameters()`` order.

    Levels follow PaddleHub's rule (strategy.get_depth_parameter): an op's depth is 1 + the
    max depth of the ops producing its inputs; a parameter's depth is the min depth of the
    ops consuming it; a parameter one depth deeper whose name shares the prefix before the
    first "." (``pooled_fc.w_0`` / ``pooled_fc.b_0``) joins the shallower level. On PaddleHub
    1.x's static BERT graph (bottom to top) that gives:
    - ``word_embedding``, ``pos_embedding``, ``sent_embedding``: three parallel lookups of
      feeds, one depth, so ONE level;
    - ``pre_encoder_layer_norm_{scale,bias}`` (one layer_norm op consumes both): a level;
    - per layer: the q/k/v ``mul`` ops read the same input (one depth; each bias merges with
      its weight), so ONE level for Q|K|V; then the attention output fc, the post-attention
      LayerNorm, FFN in, FFN out, post-FFN LayerNorm: six levels per layer;
    - ``pooled_fc.{w_0,b_0}``: a level;
    - the classifier ``cls_out_w`` (read by ``mul``) and ``cls_out_b`` (one depth deeper, by
      ``elementwise_add``) share no "." prefix: TWO levels, the bias on top.
    So 6L + 5 levels with a classifier (149 for 24 layers), 6L + 3 without: the seed's
    blocks/factor were tuned on this count.
    """
    h, i, n_layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    prefix = "" if num_labels is None else ENCODER_PREFIX
    weight_shapes = {"attention.qkv": (h, 3 * h), "attention.out": (h, h), "ffn_in": (h, i), "ffn_out": (i, h)}

    def linear(name, w_shape, layer):
        return [(f"{name}.weight", w_shape, layer, True), (f"{name}.bias", (w_shape[1],), layer, False)]

    def norm(name, layer):
        return [(f"{name}.weight", (h,), layer, False), (f"{name}.bias", (h,), layer, False)]

    e = f"{prefix}embeddings."
    bottom_up = [  # one list per level, bottom first: (name, shape, layer, decay)
        [(e + "word_embeddings.weight", (config.vocab_size, h), 0, True),
         (e + "position_embeddings.weight", (config.max_position_embeddings, h), 0, True),
         (e + "token_type_embeddings.weight", (config.type_vocab_size, h), 0, True)],
        norm(e + "layer_norm", 0),
    ]
    for n in range(n_layers):
        for module, kind in LAYER_MODULES:
            name = f"{prefix}encoder.layers.{n}.{module}"
            bottom_up.append(linear(name, weight_shapes[module], n + 1) if kind == "linear" else norm(name, n + 1))
    bottom_up.append(linear(f"{prefix}pooler.dense", (h, h), n_layers + 1))
    if num_labels is not None:
        weight, bias = linear("classifier", (h, num_labels), n_layers + 1)
        bottom_up += [[weight], [bias]]
    top = len(bottom_up) - 1
    return [ParamSpec(name, shape, top - depth, layer, decay)
            for depth, level in enumerate(bottom_up) for name, shape, layer, decay in level]


def levels_of(table: Sequence[ParamSpec]) -> list[list[str]]:
    """Parameter names per level, TOP FIRST (the order discriminative LR and unfreezing use)."""
    out: list[list[str]] = [[] for _ in range(1 + max((p.level for p in table), default=-1))]
    for p in table:
        out[p.level].append(p.name)
    return out


def split_encoder_state(state: dict) -> tuple[dict, list[str]]:
    """A classifier checkpoint's state -> (its encoder's state without ``bert.``, the other names)."""
    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    return encoder, sorted(k for k in state if not k.startswith(ENCODER_PREFIX))


def classifier_state(encoder_state: dict, head: dict) -> dict:
    """An encoder's state and a head ``{"weight", "bias"}`` -> the classifier's state (our names)."""
    state = {ENCODER_PREFIX + k: v for k, v in encoder_state.items()}
    state.update({f"classifier.{k}": v for k, v in head.items()})
    return state


class _TableMethods:
    """levels(), layer_of(), num_parameters() of both model classes, all read from the table."""

    def param_table(self) -> list[ParamSpec]:
        labels = getattr(self, "labels", None)
        return param_table(self.config, None if labels is None else len(labels))

    def levels(self) -> list[list[str]]:
        """Parameter names grouped by PaddleHub 1.4 op-depth level, top first (see param_table)."""
        return levels_of(self.param_table())

    def layer_of(self, name: str) -> int:
        """Embeddings 0, encoder layer i -> i + 1, pooler and classifier -> num_hidden_layers + 1."""
        for p in self.param_table():
            if p.name == name:
                return p.layer
        raise AutoftError(f"layer_of: {name!r} is not a parameter of this model")

    def num_parameters(self) -> int:
        return sum(math.prod(p.shape) for p in self.param_table())


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
    # Paddle >= 3.1 (``backend`` in the signature): SDPA whose selector we have checked (see
    # flash_applies). Paddle 2.6 / 3.0 always take the explicit math below.
    fn = getattr(F, "scaled_dot_product_attention", None)
    return fn is not None and "backend" in inspect.signature(fn).parameters


USE_SDPA = _has_sdpa()
FLASH_DTYPES = (paddle.float16, paddle.bfloat16)


@functools.cache
def _device_capability(device_id: int) -> tuple:
    return tuple(paddle.device.cuda.get_device_capability(device_id))


def gpu_capability(place) -> Optional[tuple]:
    """(major, minor) of the CUDA GPU holding ``place``, None for any other device."""
    if not (hasattr(place, "is_gpu_place") and place.is_gpu_place()):
        return None
    return _device_capability(place.gpu_device_id())


def _flash_enabled() -> bool:
    """Flash is among the SDPA backends this build and any ``sdpa_kernel`` / ``sdp_kernel``
    context enable (otherwise the selector falls through to a kernel that rejects our mask)."""
    try:  # Paddle >= 3.3: one list of enabled backends (a CUDA build without flash omits it)
        from paddle.nn.attention import sdpa as backends

        return backends.SDPBackend.FLASH_ATTENTION in backends._get_enabled_backends()
    except (ImportError, AttributeError):
        pass
    from paddle.nn.functional import flash_attention  # 3.1 / 3.2: sdp_kernel's module switches

    return getattr(flash_attention, "g_enable_flash", None) is not False


def attention_kernel(dtype, sm: Optional[tuple], head_dim: int) -> str:
    """The native path's attention for queries of ``dtype`` on a GPU of compute capability
    ``sm`` (None: not a CUDA GPU): "flash" (through SDPA) or "explicit".

    Flash is the one SDPA kernel that reads the [B, 1, 1, S] mask right (it broadcasts heads
    and query rows): fp16 / bf16 on sm 8.x / 9.0 (its build asserts sm8x or sm90), D a multiple
    of 8 up to 128. For anything else Paddle's selector would pick a kernel that rejects or
    misreads that mask (3.3: the memory-efficient kernel wants [B, heads, S_q, S]; 3.1 / 3.2:
    an inference kernel that reads [B, 1, S_q, S], drops dropout and cuts keys to S_q), so
    those calls take the explicit path. docs/model.md, "Attention kernels".
    """
    flash = USE_SDPA and dtype in FLASH_DTYPES and sm is not None and sm[0] in (8, 9)
    return "flash" if flash and head_dim % 8 == 0 and head_dim <= 128 and _flash_enabled() else "explicit"


def flash_applies(q: paddle.Tensor) -> bool:
    """Whether SDPA runs flash attention for queries ``q`` [B, S_q, heads, D] (see attention_kernel)."""
    if not USE_SDPA or q.dtype not in FLASH_DTYPES:
        return False
    return attention_kernel(q.dtype, gpu_capability(q.place), q.shape[-1]) == "flash"


def explicit_attention(q, k, v, mask, p: float, training: bool) -> paddle.Tensor:
    """softmax(q k^T / sqrt(D) + mask) v with dropout on the probabilities; [B, S, heads, D] in and out."""
    q, k, v = (t.transpose([0, 2, 1, 3]) for t in (q, k, v))
    scores = paddle.matmul(q, k, transpose_y=True) * (1.0 / math.sqrt(q.shape[-1])) + mask
    probs = F.dropout(F.softmax(scores, axis=-1), p, training=training)
    return paddle.matmul(probs, v).transpose([0, 2, 1, 3])


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
        if flash_applies(q):  # layout [B, S, heads, D]: no transposes needed
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, training=training)
        else:
            ctx = explicit_attention(q, k, v, mask, p, training)
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


def _moves_device(args: tuple, kwargs: dict) -> bool:
    """Whether a ``Layer.to(device=None, dtype=None, ...)`` call names a device."""
    return (args[0] if args else kwargs.get("device")) is not None


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


class BertModel(_TableMethods, nn.Layer):
    """The encoder: forward(input_ids, token_type_ids=None, attention_mask=None) -> (sequence, pooled).

    ``attention_mask``: 1 for tokens, 0 for padding (default: 0 where ``input_ids`` hold
    ``config.pad_token_id``). ``init``: "normal"
    (BERT's initialisation) or "zeros" (constants: cheap when weights are loaded next).
    The compute path (``.path``) is chosen here and in ``to()`` by ``default_path``;
    ``use_path("cpu" | "native")`` forces one.
    """

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
        """Paddle's ``Layer.to``; a move to a device (not a dtype change) chooses the path again."""
        out = super().to(*args, **kwargs)
        if _moves_device(args, kwargs):
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
        if attention_mask is None:  # padding is what holds the pad id (a real token never does)
            attention_mask = (input_ids != self.config.pad_token_id).astype("int64")
        x = self.embeddings(input_ids, token_type_ids)
        mask = self.path.prepare_mask(additive_mask(attention_mask, x.dtype), self.config.num_attention_heads)
        x = self.encoder(x, mask, first_token_only)
        return x, self.pooler(x)

    def uses_cpu_path(self) -> bool:
        """Whether this model runs the CPU path (custom kernels) rather than the native one."""
        return self.path is CPU_PATH


class BertForSequenceClassification(_TableMethods, nn.Layer):
    """BertModel + dropout + Linear on the pooled output; ``labels`` are the class names in id order.

    ``bert``: an existing encoder to use (e.g. from ``load_pretrained``), so that only the new
    head is initialised; its config must equal ``config``.
    """

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
        if _moves_device(args, kwargs):
            self.bert.use_path(default_path(self.classifier.weight.place))
        return out

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        # The head reads only the pooled [CLS] output: the last layer skips the other tokens.
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask, first_token_only=True)
        path = self.bert.path
        return path.linear(path.dropout(pooled, self.dropout, self.training), self.classifier)

