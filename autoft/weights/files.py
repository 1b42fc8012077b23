"""The small files of a model directory, each read in one place: JSON, vocab.txt, safetensors.

Every model format (ours and the foreign ones) and the tokenizer read these files through
the functions here, so a file that is missing, not UTF-8 or not valid JSON gets the same
message (naming the file, and the line for JSON) wherever it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from autoft.errors import AutoftError, where


def short_list(names: Sequence[str], limit: int = 12) -> str:
    """Comma-separated names, the first ``limit`` of them and a count of the rest."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------- JSON


def read_json(path, what: str, kind: Optional[type] = None):
    """The parsed content of a JSON file (a UTF-8 BOM is accepted).

    ``what`` says what the file should hold, e.g. "the model config (a JSON object)"; it is
    part of every message. ``kind`` (dict or list): the top-level type required. Raises
    AutoftError for a missing or unreadable file, invalid JSON (with its ``file:line``) and
    a top-level value of another type.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AutoftError(f"{path}: file not found (expected {what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AutoftError(f"{path}: cannot read {what}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AutoftError(f"{where(path, exc.lineno)}: cannot read {what}: invalid JSON ({exc.msg})") from None
    if kind is not None and not isinstance(data, kind):
        raise AutoftError(f"{path}: expected {what}, found {type(data).__name__}")
    return data


def read_do_lower_case(tokenizer_config: Path, default: bool = True) -> bool:
    """do_lower_case of a tokenizer_config.json (flat, or PaddleNLP's init_args); ``default`` if absent."""
    tokenizer_config = Path(tokenizer_config)
    if not tokenizer_config.is_file():
        return default
    raw = read_json(tokenizer_config, "the tokenizer config (a JSON object)", dict)
    if "do_lower_case" not in raw and isinstance(raw.get("init_args"), list) and raw["init_args"]:
        inner = raw["init_args"][0]
        raw = inner if isinstance(inner, dict) else raw
    return bool(raw.get("do_lower_case", default))


# --------------------------------------------------------------------------- vocab.txt


@dataclass(frozen=True)
class Vocab:
    """A vocab.txt: ``tokens[i]`` is the token of id i; ``raw`` the file's bytes (for hashing/copying)."""

    path: Path
    tokens: Sequence[str]
    raw: bytes

    @property
    def size(self) -> int:
        return len(self.tokens)

    def check_size(self, rows: int, holder: str, detail: str = "") -> Vocab:
        """``self``, after checking it has one token per word-embedding row (else AutoftError).

        The message reads "<holder> has <rows> rows<detail>", e.g. holder "the model being
        saved", detail " in embeddings.word_embeddings.weight".
        """
        if self.size != rows:
            raise AutoftError(
                f"{self.path}: vocabulary has {self.size} tokens but {holder} has {rows} rows{detail}; "
                "expected the vocab.txt that belongs to these weights")
        return self

    def index(self, token: str) -> Optional[int]:
        """Id of the first line holding ``token``, None if absent."""
        try:
            return self.tokens.index(token)
        except ValueError:
            return None


def read_vocab_file(path) -> Vocab:
    """Read vocab.txt: one token per line, id = line index.

    The rule of BERT's reference tokenizer: a line minus its newline (and a Windows "\\r");
    a final newline does not add a token; a UTF-8 BOM is dropped. Raises AutoftError for a
    missing file, a directory, or bytes that are not UTF-8 (naming the offset).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AutoftError(f"{path}: vocabulary file not found (expected vocab.txt, one token per line)") from None
    except IsADirectoryError:
        raise AutoftError(f"{path}: expected a vocab.txt file, found a directory") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AutoftError(f"{path}: expected UTF-8 text, found invalid byte at offset {exc.start}") from None
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    return Vocab(path, [line.rstrip("\r") for line in lines], raw)


def check_vocab_size(vocab_file: Path, rows: int, holder: str, detail: str = "") -> Vocab:
    """The vocab, after checking it has one token per word-embedding row (see Vocab.check_size)."""
    return read_vocab_file(vocab_file).check_size(rows, holder, detail)


# --------------------------------------------------------------------------- safetensors


def read_safetensors(path: Path, what: str = "weights") -> Dict[str, np.ndarray]:
    """All tensors of a .safetensors file as numpy arrays (no torch needed)."""
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise AutoftError(f"{path}: file not found (expected the model {what}, {path.name})")
    try:
        return load_file(str(path))
    except Exception as exc:  # the library raises several types for bad files
        raise AutoftError(f"{path}: cannot read as safetensors (corrupt or truncated file?): {exc}") from None


def safetensors_metadata_and_names(path: Path):
    """(metadata dict, tensor names) of a .safetensors header, or None when it cannot be read."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            return dict(f.metadata() or {}), list(f.keys())
    except Exception:  # unreadable: the caller decides what that means
        return None
