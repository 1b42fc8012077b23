"""Hugging Face BERT directories: config.json + model.safetensors or pytorch_model.bin (+ sharded index).

PyTorch orientation (Linear weight [out, in], transposed here); LayerNorm parameters are
weight/bias, or gamma/beta in checkpoints converted from TensorFlow. torch is imported only
to read a pytorch_model.bin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from autoft.errors import AutoftError
from autoft.weights.files import read_do_lower_case, read_json, read_safetensors
from autoft.weights.rules import LAYER, QKV, Rule, Source, Table, config_from, linear, norm

NAME = "hf"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")

_LN = (r"\.(?:weight|gamma)", r"\.(?:bias|beta)")
_LAYER = rf"encoder\.layer\.{LAYER}"
RULES = [
    Rule(r"embeddings\.word_embeddings\.weight", "embeddings.word_embeddings.weight"),
    Rule(r"embeddings\.position_embeddings\.weight", "embeddings.position_embeddings.weight"),
    Rule(r"embeddings\.token_type_embeddings\.weight", "embeddings.token_type_embeddings.weight"),
    *norm(r"embeddings\.LayerNorm", "embeddings.layer_norm", *_LN),
    *linear(rf"{_LAYER}\.attention\.self\.query", QKV, True, 0),
    *linear(rf"{_LAYER}\.attention\.self\.key", QKV, True, 1),
    *linear(rf"{_LAYER}\.attention\.self\.value", QKV, True, 2),
    # attention.output.dense (attention out projection) vs output.dense (FFN out): the
    # regexes are anchored, so the two never match the same name.
    *linear(rf"{_LAYER}\.attention\.output\.dense", "encoder.layers.{0}.attention.out", True),
    *norm(rf"{_LAYER}\.attention\.output\.LayerNorm", "encoder.layers.{0}.attention_norm", *_LN),
    *linear(rf"{_LAYER}\.intermediate\.dense", "encoder.layers.{0}.ffn_in", True),
    *linear(rf"{_LAYER}\.output\.dense", "encoder.layers.{0}.ffn_out", True),
    *norm(rf"{_LAYER}\.output\.LayerNorm", "encoder.layers.{0}.ffn_norm", *_LN),
    *linear(r"pooler\.dense", "pooler.dense", True),
    *linear(r"classifier", "classifier", True),  # BertForSequenceClassification head
]
TABLE = Table(RULES, prefixes=("bert.",), ignore=r"embeddings\.position_ids", unused=r"cls\..*")


def detect(path: Path) -> bool:
    return any((path / f).is_file() for f in WEIGHT_FILES)


def locate(path: Path) -> Source:
    """The config and files of a Hugging Face directory (nothing large is read yet)."""
    config_path = path / "config.json"
    if not config_path.is_file():
        raise AutoftError(f"{config_path}: config file not found (a Hugging Face model directory needs "
                          "config.json beside its weights)")
    raw = read_json(config_path, "the model config (a JSON object)", dict)
    model_type = raw.get("model_type", "bert")
    if model_type != "bert":
        raise AutoftError(f"{config_path}: model_type {model_type!r} is not supported; expected \"bert\" "
                          "(the HFL Chinese RoBERTa-wwm checkpoints are BERT architecture)")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise AutoftError(f"{config_path}: position_embedding_type {raw['position_embedding_type']!r} is not "
                          "supported; expected \"absolute\"")
    loaders = {
        "model.safetensors": read_safetensors,
        "model.safetensors.index.json": lambda p: _load_sharded(p, read_safetensors),
        "pytorch_model.bin": read_torch_bin,
        "pytorch_model.bin.index.json": lambda p: _load_sharded(p, read_torch_bin),
    }
    name = next(n for n in WEIGHT_FILES if (path / n).is_file())  # safetensors first: no pickle, no torch
    weights = path / name
    return Source(config_from(raw, str(config_path)), str(config_path), weights, lambda: loaders[name](weights),
                  path / "vocab.txt", read_do_lower_case(path / "tokenizer_config.json"))


def _load_sharded(index: Path, reader) -> Dict[str, np.ndarray]:
    weight_map = read_json(index, "a sharded-weights index (a JSON object)", dict).get("weight_map")
    if not isinstance(weight_map, dict):
        raise AutoftError(f"{index}: expected a \"weight_map\" object naming each tensor's shard file")
    tensors: Dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(reader(index.parent / shard))
    return tensors


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
    return {name: (t.float() if t.is_floating_point() else t).numpy()
            for name, t in state.items() if isinstance(t, torch.Tensor)}
