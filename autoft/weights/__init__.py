"""Model directories on disk: which format a directory holds, and reading foreign weights.

Formats (one module each): ``autoft`` (ours, read by ``autoft.checkpoint``), ``hf`` (Hugging
Face), ``paddlenlp``, ``paddlehub1`` (PaddleHub 1.x modules). Each foreign format module
describes its tensor names as data (``TABLE``), says whether a directory is one of its own
(``detect``) and finds its config and files (``locate``); :func:`read_foreign` does the rest
for all of them: vocab.txt checked first, the names mapped (``rules.apply_rules``), the
result checked against the model's parameter table (``rules.check_state``).

Importing this package is cheap: torch, paddle and safetensors are imported only when a
file of theirs is read.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from autoft.errors import AutoftError
from autoft.weights import hf, paddlehub1, paddlenlp
from autoft.weights.files import (
    check_vocab_size,
    read_do_lower_case,
    read_json,
    read_vocab_file,
    safetensors_metadata_and_names,
    short_list,
)
from autoft.weights.paddlehub1 import read_lod_tensor, write_lod_tensor
from autoft.weights.rules import apply_rules, check_state

__all__ = ["FORMATS", "FOREIGN", "detect_format", "is_autoft_dir", "read_foreign", "read_foreign_raw",
           "read_do_lower_case", "read_json", "read_vocab_file", "check_vocab_size", "short_list",
           "read_lod_tensor", "write_lod_tensor"]

# Foreign formats in detection order: a PaddleNLP model.safetensors is told from an HF one by its names.
FOREIGN = {m.NAME: m for m in (paddlenlp, hf, paddlehub1)}
FORMATS = ("autoft", *FOREIGN)
AUTOFT_MARKER = "autoft_format"  # key in our config.json and in our model.safetensors metadata


def is_autoft_dir(path) -> bool:
    """True if ``path/config.json`` or the model.safetensors metadata carries our "autoft_format" marker.

    The weights' marker lets a damaged config.json be reported as such, not as a foreign format.
    """
    path = Path(path)
    try:
        if AUTOFT_MARKER in read_json(path / "config.json", "a model config", dict):
            return True
    except AutoftError:
        pass
    weights = path / "model.safetensors"
    header = safetensors_metadata_and_names(weights) if weights.is_file() else None
    return header is not None and AUTOFT_MARKER in header[0]


def detect_format(path) -> Optional[str]:
    """"autoft" | "hf" | "paddlenlp" | "paddlehub1" for a model directory, None if unknown."""
    path = Path(path)
    if not path.is_dir():
        return None
    if is_autoft_dir(path):
        return "autoft"
    return next((name for name, module in FOREIGN.items() if module.detect(path)), None)


def read_foreign(path, fmt: Optional[str] = None):
    """Read a foreign-format model directory.

    Returns ``(BertConfig, state, info)``: ``state`` maps our encoder names (no ``bert.``
    prefix, Paddle orientation) to float32 arrays; ``info`` has "format", "unused" (source
    tensors not used, e.g. MLM heads), "vocab_file" (Path), "do_lower_case",
    "classifier" (None or {"weight" [H, n], "bias" [n]}), "weights_file", "config_source".
    Raises AutoftError for unknown/missing tensors, wrong shapes, a missing config or
    vocab.txt, or a vocabulary whose size differs from the embedding.
    """
    path = Path(path)
    module = _foreign_module(path, detect_format(path) if fmt is None else fmt)
    src = module.locate(path)
    vocab = read_vocab_file(src.vocab)  # before the (large) weights: fail fast on a missing vocab.txt
    state, origin, unused = apply_rules(src.load(), module.TABLE, str(src.weights))
    classifier = check_state(state, origin, src.config, str(src.weights), src.config_source)
    vocab.check_size(src.config.vocab_size, "the model's word embedding", f" (vocab_size in {src.config_source})")
    # The pad id comes from the vocabulary: old hfl config.json files say pad_token_id 1.
    pad = vocab.index("[PAD]")
    config = src.config if pad is None else dataclasses.replace(src.config, pad_token_id=pad)
    info = {"format": module.NAME, "unused": unused, "vocab_file": src.vocab, "do_lower_case": src.do_lower_case,
            "classifier": classifier, "weights_file": src.weights, "config_source": src.config_source}
    return config, state, info


def read_foreign_raw(path, fmt: Optional[str] = None):
    """Like :func:`read_foreign` but returns the config as a dict of BertConfig fields."""
    config, state, info = read_foreign(path, fmt)
    return config.to_dict(), state, info


def _foreign_module(path: Path, fmt: Optional[str]):
    if fmt == "autoft":
        raise AutoftError(f"{path}: this is autoft's own format, not a foreign one; load it with "
                          "autoft.checkpoint.load_pretrained")
    if fmt in FOREIGN:
        return FOREIGN[fmt]
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
