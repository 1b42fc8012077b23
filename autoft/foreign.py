"""Readers for pretrained BERT weights in foreign formats (reference/weights.md).

Three formats, each described by data: a name-mapping table (source name pattern -> our
encoder name, transposed or not, which q|k|v slot of the fused attention tensor) and a
config-key mapping. One function, :func:`apply_rules`, applies any table. The result is
a numpy state dict in OUR encoder names (no ``bert.`` prefix, Paddle orientation: Linear
weight = [in, out]) plus a config, so ``checkpoint.load_pretrained`` can build the model.

- ``hf``: Hugging Face BERT directory (config.json + model.safetensors or pytorch_model.bin)
- ``paddlenlp``: PaddleNLP directory (model_config.json or config.json + model_state.pdparams)
- ``paddlehub1``: PaddleHub 1.x module (assets/vocab.txt + assets/params/@HUB_<module>@<var>,
  one Paddle LoDTensor file per variable, read here with numpy)

Importing this module is cheap: torch, paddle and safetensors are imported only when a
file of theirs is read.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from autoft.errors import AutoftError

FORMATS = ("autoft", "hf", "paddlenlp", "paddlehub1")


# --------------------------------------------------------------------------- name tables


@dataclass(frozen=True)
class Rule:
    """One row of a name table.

    ``source`` is a regex matched in full against the source tensor name (prefix removed);
    its groups fill ``{0}``, ``{1}`` in ``target``. ``transpose`` turns a PyTorch Linear
    weight [out, in] into Paddle's [in, out]. ``part`` (0, 1, 2) says which q|k|v column
    block of the fused ``attention.qkv`` tensor this source tensor fills.
    """

    source: str
    target: str
    transpose: bool = False
    part: Optional[int] = None


def _linear(source: str, target: str, transpose: bool = False, part: Optional[int] = None,
            weight: str = r"\.weight", bias: str = r"\.bias") -> List[Rule]:
    return [Rule(source + weight, target + ".weight", transpose, part),
            Rule(source + bias, target + ".bias", False, part)]


def _norm(source: str, target: str, scale: str, shift: str) -> List[Rule]:
    return [Rule(source + scale, target + ".weight"), Rule(source + shift, target + ".bias")]


_L = r"(\d+)"  # layer index group
_QKV = "encoder.layers.{0}.attention.qkv"

# Hugging Face BertModel (PyTorch orientation). LayerNorm params are weight/bias, or
# gamma/beta in checkpoints converted from TensorFlow.
_HF_LN = (r"\.(?:weight|gamma)", r"\.(?:bias|beta)")
HF_RULES: List[Rule] = [
    Rule(r"embeddings\.word_embeddings\.weight", "embeddings.word_embeddings.weight"),
    Rule(r"embeddings\.position_embeddings\.weight", "embeddings.position_embeddings.weight"),
    Rule(r"embeddings\.token_type_embeddings\.weight", "embeddings.token_type_embeddings.weight"),
    *_norm(r"embeddings\.LayerNorm", "embeddings.layer_norm", *_HF_LN),
    *_linear(rf"encoder\.layer\.{_L}\.attention\.self\.query", _QKV, True, 0),
    *_linear(rf"encoder\.layer\.{_L}\.attention\.self\.key", _QKV, True, 1),
    *_linear(rf"encoder\.layer\.{_L}\.attention\.self\.value", _QKV, True, 2),
    # attention.output.dense (attention out projection) vs output.dense (FFN out): the
    # regexes are anchored, so the two never match the same name.
    *_linear(rf"encoder\.layer\.{_L}\.attention\.output\.dense", "encoder.layers.{0}.attention.out", True),
    *_norm(rf"encoder\.layer\.{_L}\.attention\.output\.LayerNorm", "encoder.layers.{0}.attention_norm", *_HF_LN),
    *_linear(rf"encoder\.layer\.{_L}\.intermediate\.dense", "encoder.layers.{0}.ffn_in", True),
    *_linear(rf"encoder\.layer\.{_L}\.output\.dense", "encoder.layers.{0}.ffn_out", True),
    *_norm(rf"encoder\.layer\.{_L}\.output\.LayerNorm", "encoder.layers.{0}.ffn_norm", *_HF_LN),
    *_linear(r"pooler\.dense", "pooler.dense", True),
    *_linear(r"classifier", "classifier", True),  # BertForSequenceClassification head
]

# PaddleNLP BertModel / RobertaModel (paddle.nn.TransformerEncoder, post-norm): already
# Paddle orientation, nothing transposed.
PADDLENLP_RULES: List[Rule] = [
    Rule(r"embeddings\.word_embeddings\.weight", "embeddings.word_embeddings.weight"),
    Rule(r"embeddings\.position_embeddings\.weight", "embeddings.position_embeddings.weight"),
    Rule(r"embeddings\.token_type_embeddings\.weight", "embeddings.token_type_embeddings.weight"),
    *_norm(r"embeddings\.layer_norm", "embeddings.layer_norm", r"\.weight", r"\.bias"),
    *_linear(rf"encoder\.layers\.{_L}\.self_attn\.q_proj", _QKV, part=0),
    *_linear(rf"encoder\.layers\.{_L}\.self_attn\.k_proj", _QKV, part=1),
    *_linear(rf"encoder\.layers\.{_L}\.self_attn\.v_proj", _QKV, part=2),
    *_linear(rf"encoder\.layers\.{_L}\.self_attn\.out_proj", "encoder.layers.{0}.attention.out"),
    *_norm(rf"encoder\.layers\.{_L}\.norm1", "encoder.layers.{0}.attention_norm", r"\.weight", r"\.bias"),
    *_linear(rf"encoder\.layers\.{_L}\.linear1", "encoder.layers.{0}.ffn_in"),
    *_linear(rf"encoder\.layers\.{_L}\.linear2", "encoder.layers.{0}.ffn_out"),
    *_norm(rf"encoder\.layers\.{_L}\.norm2", "encoder.layers.{0}.ffn_norm", r"\.weight", r"\.bias"),
    *_linear(r"pooler\.dense", "pooler.dense"),
    *_linear(r"classifier", "classifier"),  # *ForSequenceClassification head
]

# PaddleHub 1.x static-graph BERT (names after the @HUB_<module>@ prefix). fc weights
# (*.w_0) are [in, out] already.
_FC = (r"\.w_0", r"\.b_0")
_HUB_LN = (r"_scale", r"_bias")
PADDLEHUB1_RULES: List[Rule] = [
    Rule(r"word_embedding", "embeddings.word_embeddings.weight"),
    Rule(r"pos_embedding", "embeddings.position_embeddings.weight"),
    Rule(r"sent_embedding", "embeddings.token_type_embeddings.weight"),
    *_norm(r"pre_encoder_layer_norm", "embeddings.layer_norm", *_HUB_LN),
    *_linear(rf"encoder_layer_{_L}_multi_head_att_query_fc", _QKV, False, 0, *_FC),
    *_linear(rf"encoder_layer_{_L}_multi_head_att_key_fc", _QKV, False, 1, *_FC),
    *_linear(rf"encoder_layer_{_L}_multi_head_att_value_fc", _QKV, False, 2, *_FC),
    *_linear(rf"encoder_layer_{_L}_multi_head_att_output_fc", "encoder.layers.{0}.attention.out", False, None, *_FC),
    *_norm(rf"encoder_layer_{_L}_post_att_layer_norm", "encoder.layers.{0}.attention_norm", *_HUB_LN),
    *_linear(rf"encoder_layer_{_L}_ffn_fc_0", "encoder.layers.{0}.ffn_in", False, None, *_FC),
    *_linear(rf"encoder_layer_{_L}_ffn_fc_1", "encoder.layers.{0}.ffn_out", False, None, *_FC),
    *_norm(rf"encoder_layer_{_L}_post_ffn_layer_norm", "encoder.layers.{0}.ffn_norm", *_HUB_LN),
    *_linear(r"pooled_fc", "pooler.dense", False, None, *_FC),
    Rule(r"cls_out_w", "classifier.weight"),  # PaddleHub TextClassifierTask head
    Rule(r"cls_out_b", "classifier.bias"),
]


@dataclass(frozen=True)
class Table:
    """Everything format-specific about tensor names."""

    rules: Sequence[Rule]
    prefixes: Tuple[str, ...]  # model prefixes stripped when present (e.g. "bert.")
    ignore: str                # regex of non-weights dropped silently (buffers, name tables)
    unused: str                # regex of known tensors we do not use (reported in info["unused"])


TABLES: Dict[str, Table] = {
    "hf": Table(HF_RULES, ("bert.",), r"embeddings\.position_ids",
                r"cls\..*"),
    "paddlenlp": Table(PADDLENLP_RULES, ("roberta.", "bert."),
                       r"StructuredToParameterName@@|embeddings\.position_ids",
                       r"cls\..*|lm_head\..*"),
    # Pretraining heads, and optimizer state that PaddleHub checkpoints save beside the weights.
    "paddlehub1": Table(PADDLEHUB1_RULES, (), r"",
                        r"mask_lm_.*|next_sent_.*|.*_(?:moment[12]|beta[12]_pow_acc|velocity)_\d+"
                        r"|learning_rate_\d+|@LR_DECAY_COUNTER@|loss_scaling_\d+|num_(?:good|bad)_steps_\d+"),
}


def apply_rules(tensors: Dict[str, np.ndarray], table: Table, source: str):
    """Map ``tensors`` (source names) to our names with ``table``.

    Returns ``(state, origin, unused)``: ``state`` maps our names (including
    ``classifier.*`` when present) to float32 arrays, ``origin`` maps each of our names to
    the source name(s) it came from, ``unused`` lists known-but-unused source names.
    Raises AutoftError listing every source name the table does not know, and for a fused
    q|k|v tensor with a slot missing.
    """
    compiled = [(re.compile(r.source), r) for r in table.rules]
    ignore = re.compile(table.ignore) if table.ignore else None
    unused_re = re.compile(table.unused) if table.unused else None
    state: Dict[str, np.ndarray] = {}
    origin: Dict[str, List[str]] = {}
    parts: Dict[str, Dict[int, np.ndarray]] = {}
    unknown: List[str] = []
    unused: List[str] = []
    for name in sorted(tensors):
        key = name
        for prefix in table.prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        if ignore is not None and ignore.fullmatch(key):
            continue
        rule, m = _match(compiled, key)
        if rule is None:
            if unused_re is not None and unused_re.fullmatch(key):
                unused.append(name)
            else:
                unknown.append(name)
            continue
        target = rule.target.format(*m.groups())
        array = np.asarray(tensors[name])
        if rule.transpose:
            array = array.T
        array = np.ascontiguousarray(array, dtype=np.float32)
        if target in origin and rule.part is None or (rule.part is not None and rule.part in parts.get(target, {})):
            raise AutoftError(
                f"{source}: tensors {origin[target][0]} and {name} both map to {target}; "
                "expected one copy of each weight (is the model saved twice under different prefixes?)")
        origin.setdefault(target, []).append(name)
        if rule.part is None:
            state[target] = array
        else:
            parts.setdefault(target, {})[rule.part] = array
    if unknown:
        raise AutoftError(
            f"{source}: {len(unknown)} tensor name(s) are not BERT weights this reader knows: "
            f"{short_list(unknown)}; expected the names of reference/weights.md "
            "(is this a different architecture, or a different format?)")
    slots = ("query", "key", "value")
    for target, got in parts.items():
        if len(got) != 3:
            lacking = ", ".join(slots[i] for i in range(3) if i not in got)
            raise AutoftError(
                f"{source}: missing tensor(s) for {target}: found {', '.join(origin[target])} "
                f"but not the {lacking} part")
        # Columns q|k|v: Paddle orientation puts outputs on the last axis.
        state[target] = np.concatenate([got[0], got[1], got[2]], axis=-1)
    return state, origin, unused


def _match(compiled, key: str):
    for pattern, rule in compiled:
        m = pattern.fullmatch(key)
        if m:
            return rule, m
    return None, None


def short_list(names: Sequence[str], limit: int = 12) -> str:
    """Comma-separated names, the first ``limit`` of them and a count of the rest."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------- shapes


def expected_shapes(cfg: dict) -> Dict[str, Tuple[int, ...]]:
    """Our encoder's parameter names -> shapes for a config dict (BertConfig field names)."""
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
        "embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "embeddings.layer_norm.weight": (h,),
        "embeddings.layer_norm.bias": (h,),
        "pooler.dense.weight": (h, h),
        "pooler.dense.bias": (h,),
    }
    for n in range(cfg["num_hidden_layers"]):
        p = f"encoder.layers.{n}."
        shapes.update({
            p + "attention.qkv.weight": (h, 3 * h), p + "attention.qkv.bias": (3 * h,),
            p + "attention.out.weight": (h, h), p + "attention.out.bias": (h,),
            p + "attention_norm.weight": (h,), p + "attention_norm.bias": (h,),
            p + "ffn_in.weight": (h, i), p + "ffn_in.bias": (i,),
            p + "ffn_out.weight": (i, h), p + "ffn_out.bias": (h,),
            p + "ffn_norm.weight": (h,), p + "ffn_norm.bias": (h,),
        })
    return shapes


def check_state(state: Dict[str, np.ndarray], origin: Dict[str, List[str]], cfg: dict, source: str,
                config_source: str) -> Optional[dict]:
    """Check ``state`` against the shapes ``cfg`` implies; split off the classifier head.

    Returns ``{"weight", "bias"}`` of a classifier head, or None. Raises one AutoftError
    naming every missing tensor, every tensor of a layer beyond the config's depth and
    every wrong shape (expected vs found).
    """
    expected = expected_shapes(cfg)
    classifier = {k.split(".", 1)[1]: state.pop(k) for k in ("classifier.weight", "classifier.bias") if k in state}
    problems: List[str] = []
    missing = [k for k in expected if k not in state]
    if missing:
        problems.append(f"missing tensor(s) {short_list(missing)}")
    extra = [k for k in state if k not in expected]
    if extra:
        problems.append(
            f"tensor(s) {short_list([origin[k][0] for k in extra])} are not part of a "
            f"{cfg['num_hidden_layers']}-layer model (num_hidden_layers from {config_source})")
    wrong = [f"{k} (from {', '.join(origin[k])}): expected {list(shape)}, found {list(state[k].shape)}"
             for k, shape in expected.items() if k in state and state[k].shape != shape]
    if classifier:
        if set(classifier) != {"weight", "bias"}:
            problems.append(f"classifier head incomplete: found only classifier.{', classifier.'.join(classifier)}")
        else:
            n = classifier["bias"].shape[0] if classifier["bias"].ndim == 1 else -1
            if classifier["weight"].shape != (cfg["hidden_size"], n) or n < 1:
                wrong.append(f"classifier (from {', '.join(origin['classifier.weight'] + origin['classifier.bias'])}): "
                             f"expected weight [{cfg['hidden_size']}, n] and bias [n], found weight "
                             f"{list(classifier['weight'].shape)} and bias {list(classifier['bias'].shape)}")
    if wrong:
        problems.append("wrong shape: " + "; ".join(wrong))
    if problems:
        raise AutoftError(f"{source}: cannot load as a BERT with the config of {config_source}: " + "; ".join(problems))
    return classifier or None


# --------------------------------------------------------------------------- configs

_REQUIRED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
_OPTIONAL_KEYS = ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                  "type_vocab_size", "layer_norm_eps", "initializer_range")
_ACTIVATIONS = ("gelu", "gelu_new", "relu")  # what autoft.model implements
_DEFAULTS = {"hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
             "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
             "initializer_range": 0.02}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutoftError(f"{path}: config file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AutoftError(f"{path}: expected a JSON object, found invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AutoftError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def map_config(raw: dict, source: str, overrides: Optional[dict] = None) -> dict:
    """Shape keys of an HF / PaddleNLP / BERT-TF style config -> a BertConfig field dict.

    All three use the same key names; missing optional keys take BERT defaults.
    ``overrides`` win over the file (e.g. PaddleHub's LayerNorm epsilon).
    """
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise AutoftError(f"{source}: config is missing {', '.join(missing)}; expected the BERT shape keys "
                          f"{', '.join(_REQUIRED_KEYS)}")
    cfg = {k: raw[k] for k in _REQUIRED_KEYS}
    for k in _OPTIONAL_KEYS:
        cfg[k] = raw.get(k, _DEFAULTS[k])
    if raw.get("pad_token_id") is not None:
        cfg["pad_token_id"] = raw["pad_token_id"]
    cfg.update(overrides or {})
    for k in _REQUIRED_KEYS + ("max_position_embeddings", "type_vocab_size"):
        if not isinstance(cfg[k], int) or cfg[k] < 1:
            raise AutoftError(f"{source}: config key {k} must be a positive integer, found {cfg[k]!r}")
    if cfg["hidden_act"] not in _ACTIVATIONS:
        raise AutoftError(f"{source}: hidden_act {cfg['hidden_act']!r} is not supported; expected one of "
                          f"{', '.join(_ACTIVATIONS)}")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise AutoftError(f"{source}: hidden_size {cfg['hidden_size']} is not divisible by "
                          f"num_attention_heads {cfg['num_attention_heads']}")
    return cfg


def _paddlenlp_config(path: Path) -> dict:
    """PaddleNLP: model_config.json {"init_args": [{...}], "init_class": ...} (possibly nested
    for *ForSequenceClassification), or a flat config.json."""
    raw = _read_json(path)
    while "init_args" in raw and "vocab_size" not in raw:
        args = raw["init_args"]
        inner = args[0] if isinstance(args, list) and args else args
        if not isinstance(inner, dict):
            raise AutoftError(f"{path}: expected init_args to hold a dict of model arguments, found {args!r}")
        raw = inner
    return raw


# --------------------------------------------------------------------------- vocab


def read_vocab_info(path: Path) -> Tuple[int, Optional[int]]:
    """(number of tokens, index of [PAD] or None) of a vocab.txt; same line rule as the tokenizer."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise AutoftError(f"{path}: vocab.txt not found (expected the model's vocabulary, one token per line)") from None
    except UnicodeDecodeError as exc:
        raise AutoftError(f"{path}: expected UTF-8 text, found invalid byte at offset {exc.start}") from None
    lines = text.lstrip("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens = [line.rstrip("\r") for line in lines]
    return len(tokens), (tokens.index("[PAD]") if "[PAD]" in tokens else None)


def read_do_lower_case(tokenizer_config: Path, default: bool = True) -> bool:
    """do_lower_case of a tokenizer_config.json (flat or PaddleNLP init_args); ``default`` if absent."""
    if not tokenizer_config.is_file():
        return default
    raw = _read_json(tokenizer_config)
    if "do_lower_case" not in raw and isinstance(raw.get("init_args"), list) and raw["init_args"]:
        inner = raw["init_args"][0]
        raw = inner if isinstance(inner, dict) else raw
    return bool(raw.get("do_lower_case", default))


# --------------------------------------------------------------------------- file readers


def read_safetensors(path: Path) -> Dict[str, np.ndarray]:
    """All tensors of a .safetensors file as numpy arrays (no torch needed)."""
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # the library raises several types for bad files
        raise AutoftError(f"{path}: cannot read as safetensors ({exc})") from None


def read_torch_bin(path: Path) -> Dict[str, np.ndarray]:
    """A PyTorch state-dict pickle (pytorch_model.bin), loaded with weights_only=True."""
    try:
        import torch
    except ImportError:
        raise AutoftError(
            f"{path}: reading pytorch_model.bin needs PyTorch, which is not installed; "
            "install it (`pip install torch`) or use the model.safetensors of the same model") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AutoftError(f"{path}: cannot read as a PyTorch state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise AutoftError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    out = {}
    for name, t in state.items():
        if isinstance(t, torch.Tensor):
            out[name] = (t.float() if t.is_floating_point() else t).numpy()
    return out


def read_pdparams(path: Path) -> Dict[str, np.ndarray]:
    """A Paddle state dict (model_state.pdparams) read with paddle.load as numpy."""
    from autoft.runtime import import_paddle

    paddle = import_paddle()
    try:
        state = paddle.load(str(path), return_numpy=True)
    except Exception as exc:
        raise AutoftError(f"{path}: cannot read as a Paddle state dict ({exc})") from None
    if not isinstance(state, dict):
        raise AutoftError(f"{path}: expected a dict of tensors, found {type(state).__name__}")
    return {k: np.asarray(v) for k, v in state.items() if not isinstance(v, (dict, str))}


# Paddle VarType data-type enum (framework.proto) -> numpy dtype.
_PADDLE_DTYPES = {0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
                  6: np.float64, 20: np.uint8, 21: np.int8}


def _varint(buf: bytes, pos: int, path: Path) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise AutoftError(f"{path}: truncated TensorDesc in LoDTensor header")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _tensor_desc(desc: bytes, path: Path) -> Tuple[int, List[int]]:
    """Parse the TensorDesc protobuf: field 1 data_type (varint), field 2 dims (int64, packed or not)."""
    dtype, dims, pos = None, [], 0
    while pos < len(desc):
        key, pos = _varint(desc, pos, path)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(desc, pos, path)
            if field == 1:
                dtype = value
            elif field == 2:
                dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif wire == 2:
            size, pos = _varint(desc, pos, path)
            chunk, pos = desc[pos:pos + size], pos + size
            if field == 2:
                p = 0
                while p < len(chunk):
                    value, p = _varint(chunk, p, path)
                    dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise AutoftError(f"{path}: unexpected protobuf wire type {wire} in TensorDesc")
    if dtype is None:
        raise AutoftError(f"{path}: TensorDesc has no data type")
    return dtype, dims


def read_lod_tensor(path: Path) -> np.ndarray:
    """One variable saved by Paddle's static-graph ``save`` op (LoDTensor binary, little-endian).

    Layout: u32 version (0); u64 lod_level, then per level u64 byte size + offsets; u32
    tensor version (0); i32 TensorDesc size; TensorDesc protobuf; raw C-order data.
    """
    buf = Path(path).read_bytes()
    try:
        (version,) = struct.unpack_from("<I", buf, 0)
        if version != 0:
            raise AutoftError(f"{path}: not a Paddle LoDTensor file (version {version}, expected 0)")
        (lod_level,) = struct.unpack_from("<Q", buf, 4)
        pos = 12
        if lod_level > 64:
            raise AutoftError(f"{path}: not a Paddle LoDTensor file (lod_level {lod_level})")
        for _ in range(lod_level):
            (size,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + size
        (tversion,) = struct.unpack_from("<I", buf, pos)
        if tversion != 0:
            raise AutoftError(f"{path}: not a Paddle LoDTensor file (tensor version {tversion}, expected 0)")
        (desc_size,) = struct.unpack_from("<i", buf, pos + 4)
        pos += 8
    except struct.error:
        raise AutoftError(f"{path}: truncated LoDTensor file ({len(buf)} bytes)") from None
    if desc_size < 0 or pos + desc_size > len(buf):
        raise AutoftError(f"{path}: not a Paddle LoDTensor file (TensorDesc size {desc_size})")
    dtype_id, dims = _tensor_desc(buf[pos:pos + desc_size], path)
    pos += desc_size
    if dtype_id not in _PADDLE_DTYPES:
        raise AutoftError(f"{path}: unsupported Paddle data type {dtype_id} in LoDTensor file")
    dtype = np.dtype(_PADDLE_DTYPES[dtype_id]).newbyteorder("<")
    count = int(np.prod(dims)) if dims else 1
    if any(d < 0 for d in dims) or len(buf) - pos != count * dtype.itemsize:
        raise AutoftError(f"{path}: LoDTensor of shape {dims} ({np.dtype(dtype).name}) needs "
                          f"{count * dtype.itemsize} data bytes, found {len(buf) - pos}")
    return np.frombuffer(buf, dtype=dtype, count=count, offset=pos).astype(dtype.newbyteorder("="))\
        .reshape(dims)


def write_lod_tensor(path: Path, array: np.ndarray) -> None:
    """Write ``array`` in the LoDTensor layout read by :func:`read_lod_tensor` (lod_level 0)."""
    codes = {np.dtype(v): k for k, v in _PADDLE_DTYPES.items()}
    array = np.ascontiguousarray(array)
    desc = bytes([0x08]) + _encode_varint(codes[array.dtype])
    for d in array.shape:
        desc += bytes([0x10]) + _encode_varint(d)
    data = struct.pack("<IQIi", 0, 0, 0, len(desc)) + desc + array.astype(array.dtype.newbyteorder("<")).tobytes()
    Path(path).write_bytes(data)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


# --------------------------------------------------------------------------- formats

_HUB_PREFIX = re.compile(r"@HUB_([^@]*)@")
_HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
               "pytorch_model.bin.index.json")


def _hub_params_dir(path: Path) -> Optional[Path]:
    """Where a PaddleHub 1.x module keeps its parameter files, if ``path`` is one."""
    params = path / "assets" / "params"
    if params.is_dir():
        return params
    # A PaddleHub fine-tune checkpoint (save_persistables): the @HUB_ files sit in the dir itself.
    if path.is_dir() and any(p.name.startswith("@HUB_") for p in path.iterdir()):
        return path
    return None


def _safetensors_has_paddle_names(path: Path) -> bool:
    """Newer PaddleNLP saves model.safetensors too; its names say which layout it is."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            return any(".self_attn.q_proj." in k for k in f.keys())
    except Exception:
        return False


def detect_format(path) -> Optional[str]:
    """"autoft" | "hf" | "paddlenlp" | "paddlehub1" for a model directory, None if unknown."""
    path = Path(path)
    if not path.is_dir():
        return None
    config = path / "config.json"
    if config.is_file():
        try:
            if "autoft_format" in json.loads(config.read_text(encoding="utf-8")):
                return "autoft"
        except (OSError, ValueError, TypeError):
            pass
    if (path / "model_state.pdparams").is_file():
        return "paddlenlp"
    if (path / "model.safetensors").is_file() and _safetensors_has_paddle_names(path / "model.safetensors"):
        return "paddlenlp"
    if any((path / f).is_file() for f in _HF_WEIGHTS):
        return "hf"
    if _hub_params_dir(path) is not None:
        return "paddlehub1"
    return None


def _load_sharded(index: Path, reader) -> Dict[str, np.ndarray]:
    weight_map = _read_json(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise AutoftError(f"{index}: expected a \"weight_map\" object naming each tensor's shard file")
    tensors: Dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(reader(index.parent / shard))
    return tensors


def _read_hf(path: Path):
    config_path = path / "config.json"
    if not config_path.is_file():
        raise AutoftError(f"{config_path}: config file not found (a Hugging Face model directory needs "
                          "config.json beside its weights)")
    raw = _read_json(config_path)
    model_type = raw.get("model_type", "bert")
    if model_type != "bert":
        raise AutoftError(f"{config_path}: model_type {model_type!r} is not supported; expected \"bert\" "
                          "(the HFL Chinese RoBERTa-wwm checkpoints are BERT architecture)")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise AutoftError(f"{config_path}: position_embedding_type {raw['position_embedding_type']!r} is not "
                          "supported; expected \"absolute\"")
    cfg = map_config(raw, str(config_path))
    loaders = {
        "model.safetensors": read_safetensors,
        "model.safetensors.index.json": lambda p: _load_sharded(p, read_safetensors),
        "pytorch_model.bin": read_torch_bin,
        "pytorch_model.bin.index.json": lambda p: _load_sharded(p, read_torch_bin),
    }
    # safetensors first: no pickle, no torch.
    name = next(n for n in _HF_WEIGHTS if (path / n).is_file())
    weights = path / name
    return (cfg, str(config_path), weights, lambda: loaders[name](weights), path / "vocab.txt",
            read_do_lower_case(path / "tokenizer_config.json"))


def _read_paddlenlp(path: Path):
    for name in ("model_config.json", "config.json"):
        config_path = path / name
        if config_path.is_file():
            break
    else:
        raise AutoftError(f"{path / 'model_config.json'}: config file not found (a PaddleNLP model directory "
                          "needs model_config.json or config.json beside model_state.pdparams)")
    cfg = map_config(_paddlenlp_config(config_path), str(config_path))
    weights = path / "model_state.pdparams"
    reader = read_pdparams
    if not weights.is_file():
        weights, reader = path / "model.safetensors", read_safetensors
    return (cfg, str(config_path), weights, lambda: reader(weights), path / "vocab.txt",
            read_do_lower_case(path / "tokenizer_config.json"))


def _read_paddlehub1(path: Path):
    params = _hub_params_dir(path)
    tensors: Dict[str, np.ndarray] = {}
    modules = set()
    for f in sorted(params.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        m = _HUB_PREFIX.match(f.name)
        name = f.name[m.end():] if m else f.name
        if m:
            modules.add(m.group(1))
        if name in tensors:
            raise AutoftError(f"{params}: variable {name} is stored twice (with two different @HUB_ prefixes)")
        tensors[name] = read_lod_tensor(f)
    if not tensors:
        raise AutoftError(f"{params}: no parameter files found (expected one file per variable, "
                          "named @HUB_<module>@<variable>)")
    # Config: the module's own file if it ships one, else the shapes of the tensors.
    candidates = [path / "assets" / n for n in ("bert_config.json", "ernie_config.json", "config.json")]
    candidates += [path / n for n in ("bert_config.json", "ernie_config.json")]
    config_path = next((c for c in candidates if c.is_file()), None)
    # The static LayerNorm of these modules used epsilon 1e-5 (reference/weights.md §3).
    overrides = {"layer_norm_eps": 1e-5}
    if config_path is not None:
        cfg = map_config(_read_json(config_path), str(config_path), overrides)
        config_source = str(config_path)
    else:
        cfg = _infer_hub_config(path, params, tensors, modules)
        cfg.update(overrides)
        config_source = f"the tensor shapes in {params}"
    vocab = path / "assets" / "vocab.txt"
    if not vocab.is_file() and (path / "vocab.txt").is_file():
        vocab = path / "vocab.txt"
    lower = "cased" not in path.name.replace("uncased", "")
    return cfg, config_source, params, lambda: tensors, vocab, lower


def _infer_hub_config(path: Path, params: Path, tensors: Dict[str, np.ndarray], modules: Iterable[str]) -> dict:
    def dim(name: str, axis: int) -> int:
        if name not in tensors or tensors[name].ndim != 2:
            found = list(tensors[name].shape) if name in tensors else "no such file"
            raise AutoftError(f"{params}: cannot infer the model shape without a config: expected a 2-D "
                              f"tensor {name}, found {found}")
        return int(tensors[name].shape[axis])

    layers = {int(m.group(1)) for n in tensors if (m := re.match(r"encoder_layer_(\d+)_", n))}
    heads = None
    for name in [path.name, *sorted(modules)]:
        m = re.search(r"_A-(\d+)", name)
        if m:
            heads = int(m.group(1))
            break
    if heads is None:
        raise AutoftError(f"{path}: cannot tell the number of attention heads: expected a module name like "
                          f"roberta_wwm_ext_chinese_L-24_H-1024_A-16 or a config file {path / 'assets' / 'bert_config.json'} "
                          "with num_attention_heads")
    raw = {
        "vocab_size": dim("word_embedding", 0), "hidden_size": dim("word_embedding", 1),
        "num_hidden_layers": max(layers) + 1 if layers else 0, "num_attention_heads": heads,
        "intermediate_size": dim("encoder_layer_0_ffn_fc_0.w_0", 1),
        "max_position_embeddings": dim("pos_embedding", 0), "type_vocab_size": dim("sent_embedding", 0),
    }
    return map_config(raw, f"the tensor shapes in {params}")


_READERS = {"hf": _read_hf, "paddlenlp": _read_paddlenlp, "paddlehub1": _read_paddlehub1}


def read_foreign_raw(path, fmt: Optional[str] = None):
    """Like :func:`read_foreign` but returns the config as a dict of BertConfig fields."""
    path = Path(path)
    if fmt is None:
        fmt = detect_format(path)
    if fmt == "autoft":
        raise AutoftError(f"{path}: this is autoft's own format, not a foreign one; load it with "
                          "autoft.checkpoint.load_pretrained")
    if fmt not in _READERS:
        if not path.exists():
            raise AutoftError(f"{path}: model directory not found")
        what = f"format {fmt!r} is not a foreign format" if fmt else "no known weight files found"
        inside = sorted(p.name for p in path.iterdir() if p.is_dir() and detect_format(p)) if path.is_dir() else []
        if inside:
            what += f"; model directories inside it: {short_list(inside)}"
        raise AutoftError(
            f"{path}: not a model directory this reader knows ({what}); expected a Hugging Face "
            "directory (config.json + model.safetensors or pytorch_model.bin), a PaddleNLP directory "
            "(model_config.json + model_state.pdparams) or a PaddleHub 1.x module (assets/params/)")
    cfg, config_source, weights, load, vocab, lower = _READERS[fmt](path)
    n_vocab, pad = read_vocab_info(vocab)  # before the (large) weights: fail fast on a missing vocab
    state, origin, unused = apply_rules(load(), TABLES[fmt], str(weights))
    classifier = check_state(state, origin, cfg, str(weights), config_source)
    if n_vocab != cfg["vocab_size"]:
        raise AutoftError(f"{vocab}: vocabulary has {n_vocab} tokens but the model's word embedding has "
                          f"{cfg['vocab_size']} rows (vocab_size in {config_source}); expected the vocab.txt "
                          "that belongs to these weights")
    # The pad id comes from the vocabulary: old hfl config.json files say pad_token_id 1.
    cfg["pad_token_id"] = pad if pad is not None else int(cfg.get("pad_token_id", 0))
    info = {"format": fmt, "unused": unused, "vocab_file": vocab, "do_lower_case": lower,
            "classifier": classifier, "weights_file": weights, "config_source": config_source}
    return cfg, state, info


def read_foreign(path, fmt: Optional[str] = None):
    """Read a foreign-format model directory.

    Returns ``(BertConfig, state, info)``: ``state`` maps our encoder names (no ``bert.``
    prefix, Paddle orientation) to float32 arrays; ``info`` has "format", "unused" (source
    tensors not used, e.g. MLM heads), "vocab_file" (Path), "do_lower_case",
    "classifier" (None or {"weight" [H, n], "bias" [n]}), "weights_file", "config_source".
    Raises AutoftError for unknown/missing tensors, wrong shapes, a missing config or
    vocab.txt, or a vocabulary whose size differs from the embedding.
    """
    from autoft.model import BertConfig

    cfg, state, info = read_foreign_raw(path, fmt)
    return BertConfig.from_dict(cfg), state, info
