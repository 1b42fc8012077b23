"""PaddleHub 1.x modules: assets/vocab.txt + assets/params/@HUB_<module>@<variable>.

One Paddle LoDTensor file per variable (static-graph ``save_vars``), read here with numpy:
Paddle 3.x cannot load these files. fc weights (``*.w_0``) are [in, out] already. Without a
config file the shape is read from the tensors and the number of heads from the module name
(``..._L-24_H-1024_A-16``). A fine-tune checkpoint (``@HUB_`` files plus the task's
``cls_out_w``/``cls_out_b`` in one directory) is read too.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from autoft import atomic
from autoft.errors import AutoftError
from autoft.weights.files import read_json
from autoft.weights.rules import LAYER, QKV, Rule, Source, Table, config_from, linear, norm

NAME = "paddlehub1"
_FC = (r"\.w_0", r"\.b_0")
_LN = (r"_scale", r"_bias")
_LAYER = rf"encoder_layer_{LAYER}"
RULES = [
    Rule(r"word_embedding", "embeddings.word_embeddings.weight"),
    Rule(r"pos_embedding", "embeddings.position_embeddings.weight"),
    Rule(r"sent_embedding", "embeddings.token_type_embeddings.weight"),
    *norm(r"pre_encoder_layer_norm", "embeddings.layer_norm", *_LN),
    *linear(rf"{_LAYER}_multi_head_att_query_fc", QKV, False, 0, *_FC),
    *linear(rf"{_LAYER}_multi_head_att_key_fc", QKV, False, 1, *_FC),
    *linear(rf"{_LAYER}_multi_head_att_value_fc", QKV, False, 2, *_FC),
    *linear(rf"{_LAYER}_multi_head_att_output_fc", "encoder.layers.{0}.attention.out", False, None, *_FC),
    *norm(rf"{_LAYER}_post_att_layer_norm", "encoder.layers.{0}.attention_norm", *_LN),
    *linear(rf"{_LAYER}_ffn_fc_0", "encoder.layers.{0}.ffn_in", False, None, *_FC),
    *linear(rf"{_LAYER}_ffn_fc_1", "encoder.layers.{0}.ffn_out", False, None, *_FC),
    *norm(rf"{_LAYER}_post_ffn_layer_norm", "encoder.layers.{0}.ffn_norm", *_LN),
    *linear(r"pooled_fc", "pooler.dense", False, None, *_FC),
    Rule(r"cls_out_w", "classifier.weight"),  # PaddleHub TextClassifierTask head
    Rule(r"cls_out_b", "classifier.bias"),
]
# Pretraining heads, and optimizer state that PaddleHub checkpoints save beside the weights.
TABLE = Table(RULES, prefixes=(), ignore="",
              unused=r"mask_lm_.*|next_sent_.*|.*_(?:moment[12]|beta[12]_pow_acc|velocity)_\d+"
                     r"|learning_rate_\d+|@LR_DECAY_COUNTER@|loss_scaling_\d+|num_(?:good|bad)_steps_\d+")
# The static LayerNorm of these modules used epsilon 1e-5 (not BERT's 1e-12).
LAYER_NORM_EPS = 1e-5
_HUB_PREFIX = re.compile(r"@HUB_([^@]*)@")


def params_dir(path: Path) -> Optional[Path]:
    """Where a PaddleHub 1.x module keeps its parameter files, if ``path`` is one."""
    params = path / "assets" / "params"
    if params.is_dir():
        return params
    # A PaddleHub fine-tune checkpoint (save_persistables): the @HUB_ files sit in the dir itself.
    if path.is_dir() and any(p.name.startswith("@HUB_") for p in path.iterdir()):
        return path
    return None


def detect(path: Path) -> bool:
    return params_dir(path) is not None


def locate(path: Path) -> Source:
    """The config and files of a PaddleHub 1.x module. Its variables are small files, read here."""
    params = params_dir(path)
    tensors, modules = _read_params(params)
    # Config: the module's own file if it ships one, else the shapes of the tensors.
    candidates = [path / "assets" / n for n in ("bert_config.json", "ernie_config.json", "config.json")]
    candidates += [path / n for n in ("bert_config.json", "ernie_config.json")]
    config_path = next((c for c in candidates if c.is_file()), None)
    overrides = {"layer_norm_eps": LAYER_NORM_EPS}
    if config_path is not None:
        raw, config_source = read_json(config_path, "the model config (a JSON object)", dict), str(config_path)
    else:
        raw, config_source = _infer_shape(path, params, tensors, modules), f"the tensor shapes in {params}"
    vocab = path / "assets" / "vocab.txt"
    if not vocab.is_file() and (path / "vocab.txt").is_file():
        vocab = path / "vocab.txt"
    lower = "cased" not in path.name.replace("uncased", "")
    return Source(config_from(raw, config_source, overrides), config_source, params, lambda: tensors, vocab, lower)


def _read_params(params: Path) -> Tuple[Dict[str, np.ndarray], set]:
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
    return tensors, modules


def _infer_shape(path: Path, params: Path, tensors: Dict[str, np.ndarray], modules: Iterable[str]) -> dict:
    """The BERT shape keys read from the tensors and the module name (for a module without a config)."""
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
    return {
        "vocab_size": dim("word_embedding", 0), "hidden_size": dim("word_embedding", 1),
        "num_hidden_layers": max(layers) + 1 if layers else 0, "num_attention_heads": heads,
        "intermediate_size": dim("encoder_layer_0_ffn_fc_0.w_0", 1),
        "max_position_embeddings": dim("pos_embedding", 0), "type_vocab_size": dim("sent_embedding", 0),
    }


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
    atomic.write_bytes(path, data)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)
