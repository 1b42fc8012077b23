"""PaddleNLP BertModel / RobertaModel directories: model_config.json or config.json +
model_state.pdparams (or model.safetensors with PaddleNLP names).

paddle.nn.TransformerEncoder layout (post-norm), already in Paddle orientation: nothing is
transposed. paddle is imported only to read a .pdparams file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from autoft.errors import AutoftError
from autoft.weights.files import (
    read_do_lower_case,
    read_json,
    read_safetensors,
    safetensors_metadata_and_names,
)
from autoft.weights.rules import LAYER, QKV, Rule, Source, Table, config_from, linear, norm

NAME = "paddlenlp"
_WB = (r"\.weight", r"\.bias")
_LAYER = rf"encoder\.layers\.{LAYER}"
RULES = [
    Rule(r"embeddings\.word_embeddings\.weight", "embeddings.word_embeddings.weight"),
    Rule(r"embeddings\.position_embeddings\.weight", "embeddings.position_embeddings.weight"),
    Rule(r"embeddings\.token_type_embeddings\.weight", "embeddings.token_type_embeddings.weight"),
    *norm(r"embeddings\.layer_norm", "embeddings.layer_norm", *_WB),
    *linear(rf"{_LAYER}\.self_attn\.q_proj", QKV, part=0),
    *linear(rf"{_LAYER}\.self_attn\.k_proj", QKV, part=1),
    *linear(rf"{_LAYER}\.self_attn\.v_proj", QKV, part=2),
    *linear(rf"{_LAYER}\.self_attn\.out_proj", "encoder.layers.{0}.attention.out"),
    *norm(rf"{_LAYER}\.norm1", "encoder.layers.{0}.attention_norm", *_WB),
    *linear(rf"{_LAYER}\.linear1", "encoder.layers.{0}.ffn_in"),
    *linear(rf"{_LAYER}\.linear2", "encoder.layers.{0}.ffn_out"),
    *norm(rf"{_LAYER}\.norm2", "encoder.layers.{0}.ffn_norm", *_WB),
    *linear(r"pooler\.dense", "pooler.dense"),
    *linear(r"classifier", "classifier"),  # *ForSequenceClassification head
]
TABLE = Table(RULES, prefixes=("roberta.", "bert."),
              ignore=r"StructuredToParameterName@@|embeddings\.position_ids", unused=r"cls\..*|lm_head\..*")


def detect(path: Path) -> bool:
    if (path / "model_state.pdparams").is_file():
        return True
    # Newer PaddleNLP saves model.safetensors too; its tensor names say which layout it is.
    header = safetensors_metadata_and_names(path / "model.safetensors") if (path / "model.safetensors").is_file() else None
    return header is not None and any(".self_attn.q_proj." in k for k in header[1])


def locate(path: Path) -> Source:
    """The config and files of a PaddleNLP directory (nothing large is read yet)."""
    for name in ("model_config.json", "config.json"):
        config_path = path / name
        if config_path.is_file():
            break
    else:
        raise AutoftError(f"{path / 'model_config.json'}: config file not found (a PaddleNLP model directory "
                          "needs model_config.json or config.json beside model_state.pdparams)")
    weights, reader = path / "model_state.pdparams", read_pdparams
    if not weights.is_file():
        weights, reader = path / "model.safetensors", read_safetensors
    return Source(config_from(_model_args(config_path), str(config_path)), str(config_path), weights,
                  lambda: reader(weights), path / "vocab.txt", read_do_lower_case(path / "tokenizer_config.json"))


def _model_args(path: Path) -> dict:
    """model_config.json {"init_args": [{...}], "init_class": ...} (nested once more for
    *ForSequenceClassification), or a flat config.json."""
    raw = read_json(path, "the model config (a JSON object)", dict)
    while "init_args" in raw and "vocab_size" not in raw:
        args = raw["init_args"]
        inner = args[0] if isinstance(args, list) and args else args
        if not isinstance(inner, dict):
            raise AutoftError(f"{path}: expected init_args to hold a dict of model arguments, found {args!r}")
        raw = inner
    return raw


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
