"""autoft's own checkpoint format, and loading any supported model directory.

Our format is a directory (no pickle anywhere):

    config.json            BertConfig fields + "autoft_format": 1
    model.safetensors      float32 tensors; a classifier's encoder under "bert.", its head "classifier.*"
    vocab.txt              the tokenizer's vocabulary (one token per line)
    tokenizer_config.json  {"do_lower_case": true}
    labels.json            classifier only: label strings in id order
    train_state.json       optional: score, hparams, epoch... (``extra`` of save_pretrained)

Foreign directories (Hugging Face, PaddleNLP, PaddleHub 1.x) are read by ``autoft.weights``.
Nothing is ever downloaded: a model name resolves to a local directory or to an error that
says which files to put where.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Optional, Union

import numpy as np

from autoft import atomic
from autoft.errors import AutoftError
from autoft.paths import models_home
from autoft.weights import AUTOFT_MARKER, detect_format, is_autoft_dir, read_foreign
from autoft.weights.files import check_vocab_size, read_json, read_safetensors

log = logging.getLogger("autoft")

FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
VOCAB = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
LABELS = "labels.json"
TRAIN_STATE = "train_state.json"

LAYOUTS = (
    "autoft format: config.json, model.safetensors, vocab.txt, tokenizer_config.json "
    "(what `autoft convert SRC DST` writes); "
    "Hugging Face: config.json + model.safetensors or pytorch_model.bin + vocab.txt "
    "(e.g. hfl/chinese-roberta-wwm-ext-large); "
    "PaddleNLP: model_config.json (or config.json) + model_state.pdparams + vocab.txt; "
    "PaddleHub 1.x module: assets/vocab.txt + assets/params/ (e.g. roberta_wwm_ext_chinese_L-24_H-1024_A-16)"
)

PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------- resolving a model


def _looks_like_path(s: str) -> bool:
    return os.sep in s or "/" in s or s.startswith((".", "~"))


def resolve_model_dir(name_or_path: PathLike, model_dir: Optional[PathLike] = None) -> Path:
    """The local directory of a model.

    An explicit path (absolute, or containing "/", or starting with "." or "~") is used as is.
    A bare name resolves to ``model_dir`` (the --model_dir flag: the model's directory itself,
    or a directory holding ``<name>/``), else to an existing directory of that name, else to
    ``$AUTOFT_HOME/models/<name>``. Raises AutoftError naming the directory searched and the
    files to put there (nothing is downloaded).
    """
    name = str(name_or_path)
    p = Path(name).expanduser()
    if _looks_like_path(name) or p.is_absolute():
        if p.is_dir():
            return p
        raise AutoftError(f"{p}: model directory not found; expected a directory with one of: {LAYOUTS}")
    if model_dir is not None:
        md = Path(model_dir).expanduser()
        if (md / name).is_dir() and not _has_model_files(md):
            return md / name
        if md.is_dir():
            return md
        raise AutoftError(
            f"--model_dir {md}: directory not found; expected the model's files there ({LAYOUTS})"
        )
    if p.is_dir():
        return p
    target = models_home() / name
    if target.is_dir():
        return target
    raise AutoftError(
        f"model {name!r} not found: looked in {target} ($AUTOFT_HOME/models/{name}). autoft never "
        f"downloads weights: put the model's files in {target} (or pass --model_dir DIR) in one of "
        f"these layouts: {LAYOUTS}. A Hugging Face or PaddleNLP copy can be used as is, or converted "
        f"with `autoft convert SRC {target}`."
    )


def _has_model_files(d: Path) -> bool:
    return any(
        (d / f).exists() for f in (CONFIG, WEIGHTS, "model_config.json", "pytorch_model.bin", "assets")
    )


def model_format(d: Path) -> str:
    """The format of model directory ``d`` ("autoft" or a foreign one, see autoft.weights); an
    AutoftError naming what ``d`` holds and the layouts autoft reads when it is none of them."""
    fmt = detect_format(d)
    if fmt is None:
        found = ", ".join(sorted(p.name for p in d.iterdir())[:12]) or "nothing"
        raise AutoftError(f"{d}: not a model directory autoft knows (found: {found}); expected one of: {LAYOUTS}")
    return fmt


# --------------------------------------------------------------------------- small readers


def read_config(path: Path):
    """BertConfig from our config.json; errors name the file."""
    return read_config_and_json(path)[0]


def read_config_and_json(path: Path) -> tuple:
    """(BertConfig, the parsed file) of our config.json: the dict also holds the keys that are
    not BertConfig fields (a classifier's "classifier_dropout")."""
    from autoft.model import BertConfig

    raw = read_json(path, "the model config (a JSON object of BertConfig fields)", dict)
    version = raw.get(AUTOFT_MARKER)
    if version is not None and version != FORMAT_VERSION:
        raise AutoftError(f"{path}: autoft_format {version!r} is not supported; expected {FORMAT_VERSION}")
    return BertConfig.from_dict(raw, str(path)), raw


# --------------------------------------------------------------------------- state dicts


def assign_state(model, state: dict, source: str = "state dict") -> None:
    """Copy ``state`` (name -> array, our names) into ``model``'s parameters, bit for bit.

    Refuses, in one error naming ``source``: missing tensors, unexpected tensors, shape
    mismatches (expected vs found) and non-float arrays. Nothing is assigned unless all match.
    """
    params = dict(model.named_parameters())
    missing = [n for n in params if n not in state]
    unexpected = sorted(n for n in state if n not in params)
    problems = []
    if missing:
        problems.append(
            "missing tensors " + ", ".join(f"{n} (expected {list(params[n].shape)})" for n in missing[:8])
        )
        if len(missing) > 8:
            problems[-1] += f" and {len(missing) - 8} more"
    if unexpected:
        more = f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else ""
        problems.append("unexpected tensors " + ", ".join(unexpected[:8]) + more)
    for n, p in params.items():
        if n in state:
            arr = np.asarray(state[n])
            if list(arr.shape) != list(p.shape):
                problems.append(f"tensor {n}: expected shape {list(p.shape)}, found {list(arr.shape)}")
            elif arr.dtype.kind != "f":
                problems.append(f"tensor {n}: expected a float tensor, found {arr.dtype}")
    if problems:
        raise AutoftError(f"{source}: cannot load into {type(model).__name__}: " + "; ".join(problems))
    for n, p in params.items():
        p.set_value(np.ascontiguousarray(state[n], dtype=np.float32))


def state_of(model) -> dict[str, np.ndarray]:
    """Parameters as numpy arrays under our names (a classifier's encoder under "bert.")."""
    return {n: p.numpy() for n, p in model.named_parameters()}


# --------------------------------------------------------------------------- saving


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _write_json(path: Path, data) -> None:
    path.write_text(
        json.dumps(data, ensure_ascii=False, indent=2, default=_json_default) + "\n", encoding="utf-8"
    )


def save_pretrained(
    model, out_dir: PathLike, vocab_file: PathLike, do_lower_case: bool = True, extra: Optional[dict] = None
) -> Path:
    """Write ``model`` (BertModel or BertForSequenceClassification) to ``out_dir`` in our format.

    Atomic: everything is written into a temporary directory beside ``out_dir`` and renamed
    into place; an existing ``out_dir`` is replaced only after the new one is complete.
    ``extra`` (JSON-serialisable) becomes train_state.json. Raises AutoftError if the vocab
    size differs from the embedding rows. Returns ``out_dir``.
    """
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    vocab_file = Path(vocab_file)
    state = state_of(model)
    emb = model.param_table()[0].name  # the word embedding comes first
    check_vocab_size(vocab_file, state[emb].shape[0], "the model being saved", f" in {emb}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_sibling(out_dir)
    tmp.mkdir()
    try:
        config = {**model.config.to_dict(), AUTOFT_MARKER: FORMAT_VERSION}
        if getattr(model, "labels", None) is not None:
            config["classifier_dropout"] = model.dropout
        _write_json(tmp / CONFIG, config)
        save_file(state, str(tmp / WEIGHTS), metadata={AUTOFT_MARKER: str(FORMAT_VERSION)})
        shutil.copyfile(vocab_file, tmp / VOCAB)
        _write_json(tmp / TOKENIZER_CONFIG, {"do_lower_case": bool(do_lower_case)})
        labels = getattr(model, "labels", None)
        if labels is not None:
            _write_json(tmp / LABELS, list(labels))
        if extra is not None:
            _write_json(tmp / TRAIN_STATE, extra)
        atomic.replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# --------------------------------------------------------------------------- loading


def load_pretrained(path_or_name: PathLike, model_dir: Optional[PathLike] = None):
    """The encoder (BertModel, eval mode) of any supported model directory.

    Format auto-detected: ours (also a classifier dir: its encoder part is returned), or a
    Hugging Face / PaddleNLP / PaddleHub 1.x directory via ``autoft.weights``. Source tensors
    that are not used (MLM/NSP heads, a foreign classifier head) are reported in one info line.
    Raises AutoftError for a missing model, an unknown layout, missing/unexpected tensors,
    shape mismatches, a vocab.txt that does not match the embedding, corrupt files.
    """
    from autoft.model import ENCODER_PREFIX, BertModel, split_encoder_state

    d = resolve_model_dir(path_or_name, model_dir)
    fmt = model_format(d)
    if fmt == "autoft":
        config = read_config(d / CONFIG)
        state = read_safetensors(d / WEIGHTS)
        if any(k.startswith(ENCODER_PREFIX) for k in state):  # a classifier checkpoint: keep the encoder
            state, unused = split_encoder_state(state)
            if unused:
                log.info("%s: not used by the encoder: %s", d / WEIGHTS, ", ".join(unused))
        model = BertModel(config, init="zeros")
        assign_state(model, state, str(d / WEIGHTS))
        check_vocab_size(d / VOCAB, config.vocab_size, str(d / WEIGHTS), " in embeddings.word_embeddings.weight")
        model.eval()
        return model
    config, state, info = read_foreign(d, fmt)
    model = BertModel(config, init="zeros")
    source = str(info.get("weights_file", d))
    assign_state(model, state, source)
    unused = list(info.get("unused") or [])
    if info.get("classifier") is not None:
        unused.append("classifier head")
    if unused:
        shown = ", ".join(unused[:10]) + (f" and {len(unused) - 10} more" if len(unused) > 10 else "")
        log.info("%s (%s): %d source tensors not used: %s", source, fmt, len(unused), shown)
    model.eval()
    return model


def load_classifier(path: PathLike):
    """A BertForSequenceClassification saved in our format (with labels.json), eval mode.

    Raises AutoftError when ``path`` is not our format (convert it first), has no labels.json
    (an encoder checkpoint), or fails any check of :func:`load_pretrained`.
    """
    from autoft.model import BertForSequenceClassification

    d = Path(path).expanduser()
    if not d.is_dir():
        raise AutoftError(f"{d}: classifier directory not found (expected a directory saved by autoft)")
    if not is_autoft_dir(d):
        raise AutoftError(
            f'{d / CONFIG}: not an autoft checkpoint (no "autoft_format" key); a classifier loads from '
            f"autoft's format: convert it with `autoft convert {d} DST`"
        )
    if not (d / LABELS).is_file():
        raise AutoftError(
            f"{d / LABELS}: file not found: {d} holds an encoder, not a classifier (a classifier has "
            f"labels.json, its label strings in id order); load an encoder with load_pretrained"
        )
    labels = read_json(d / LABELS, "the classifier's label strings in id order (a JSON list)")
    if not isinstance(labels, list) or not labels:
        raise AutoftError(f"{d / LABELS}: expected a non-empty JSON list of label strings, found {labels!r}")
    config, raw = read_config_and_json(d / CONFIG)
    dropout = raw.get("classifier_dropout")
    model = BertForSequenceClassification(config, [str(x) for x in labels], dropout=dropout, init="zeros")
    assign_state(model, read_safetensors(d / WEIGHTS), str(d / WEIGHTS))
    check_vocab_size(d / VOCAB, config.vocab_size, str(d / WEIGHTS), " in embeddings.word_embeddings.weight")
    model.eval()
    return model
