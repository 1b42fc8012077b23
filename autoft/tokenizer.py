"""BERT WordPiece tokenizer for Chinese checkpoints, over the Rust `tokenizers` library.

Same algorithm as Google's / Hugging Face's BertTokenizer: clean
control characters, put spaces around CJK ideographs, lower-case and strip accents when
``do_lower_case``, split on whitespace and punctuation, then greedy longest-match WordPiece
with ``##`` continuations (words over 100 characters become [UNK]). Special-token ids are read
from vocab.txt, never assumed: the HFL vocab has [CLS]=101 but the demo vocab has [CLS]=2.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from autoft import atomic
from autoft.errors import AutoftError, where
from autoft.weights.files import read_do_lower_case, read_vocab_file

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_REQUIRED = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def read_vocab(vocab_file) -> Tuple[dict, bytes]:
    """Parse vocab.txt (one token per line, id = line index) -> (token -> id, raw bytes).

    The line rule is ``weights.files.read_vocab_file``'s; a later duplicate overrides an
    earlier one, as in the reference tokenizer. The special tokens must be present.
    """
    vocab_file = read_vocab_file(vocab_file)
    vocab = {token: index for index, token in enumerate(vocab_file.tokens)}
    missing = [t for t in _REQUIRED if t not in vocab]
    if missing:
        raise AutoftError(
            f"{where(vocab_file.path)}: expected the special tokens {', '.join(_REQUIRED)} in the vocabulary, "
            f"missing {', '.join(missing)} ({len(vocab)} tokens read)"
        )
    return vocab, vocab_file.raw


def truncated_pair_lengths(len_a: int, len_b: int, budget: int) -> Tuple[int, int]:
    """Lengths BERT's ``_truncate_seq_pair`` leaves: pop from the longer side one token at a
    time (from b on a tie) until ``len_a + len_b <= budget``."""
    if len_a + len_b <= budget:
        return len_a, len_b
    short = min(len_a, len_b)
    if budget - short >= short:  # only the longer side is cut
        return (budget - short, len_b) if len_a > len_b else (len_a, budget - short)
    return (budget + 1) // 2, budget // 2


class BertTokenizer:
    """WordPiece tokenizer: ``tokenize`` for inspection, ``encode_batch`` for whole splits."""

    def __init__(
        self, vocab: dict, vocab_bytes: bytes, do_lower_case: bool = True, vocab_file: Optional[str] = None
    ):
        self.vocab = vocab
        self._vocab_bytes = vocab_bytes
        self.do_lower_case = bool(do_lower_case)
        self.vocab_file = vocab_file
        self.vocab_hash = hashlib.sha1(vocab_bytes).hexdigest()
        self.pad_id = vocab["[PAD]"]
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.mask_id = vocab.get("[MASK]")
        self.vocab_size = max(vocab.values()) + 1
        self._tok = self._build()
        self._max_len: Optional[int] = None

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_vocab(cls, vocab_file, do_lower_case: bool = True) -> BertTokenizer:
        """Tokenizer from a vocab.txt file. Raises AutoftError if missing or lacking specials."""
        vocab, raw = read_vocab(vocab_file)
        return cls(vocab, raw, do_lower_case=do_lower_case, vocab_file=str(vocab_file))

    @classmethod
    def from_dir(cls, directory) -> BertTokenizer:
        """Tokenizer from a model directory: vocab.txt (or assets/vocab.txt of a PaddleHub
        1.x module) and tokenizer_config.json's ``do_lower_case`` (default true)."""
        d = Path(directory)
        vocab_file = d / "vocab.txt"
        if not vocab_file.is_file() and (d / "assets" / "vocab.txt").is_file():
            vocab_file = d / "assets" / "vocab.txt"
        if not vocab_file.is_file():
            raise AutoftError(f"{vocab_file}: vocabulary file not found (a model directory needs vocab.txt)")
        return cls.from_vocab(vocab_file, do_lower_case=read_do_lower_case(d / "tokenizer_config.json"))

    def _build(self) -> Tokenizer:
        tok = Tokenizer(
            models.WordPiece(
                vocab=self.vocab,
                unk_token="[UNK]",
                continuing_subword_prefix="##",
                max_input_chars_per_word=100,
            )
        )
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=self.do_lower_case,
            lowercase=self.do_lower_case,
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0",
            pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", self.cls_id), ("[SEP]", self.sep_id)],
        )
        # The reference tokenizer never splits its special tokens apart when they occur in text.
        tok.add_special_tokens([t for t in SPECIAL_TOKENS if t in self.vocab])
        return tok

    # -- use --------------------------------------------------------------------------
    def tokenize(self, text: str) -> List[str]:
        """WordPiece tokens of one text, without [CLS]/[SEP]."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> List[int]:
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def _set_max_len(self, max_seq_len: int) -> None:
        if max_seq_len < 3:
            raise AutoftError(f"max_seq_len: expected at least 3 ([CLS] a [SEP]), found {max_seq_len}")
        if self._max_len != max_seq_len:
            self._tok.enable_truncation(max_length=max_seq_len, strategy="longest_first")
            self._max_len = max_seq_len

    def encode_batch(
        self,
        texts_a: Sequence[str],
        texts_b: Optional[Sequence[Optional[str]]] = None,
        max_seq_len: int = 128,
    ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Encode many examples in one call of the Rust tokenizer (parallel inside).

        ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` with token types 0 then 1, truncated
        longest-first to ``max_seq_len`` tokens. Returns (input_ids, token_type_ids) int64 pairs.
        A ``None`` in ``texts_b`` makes that example a single text.
        """
        self._set_max_len(max_seq_len)
        if texts_b is None:
            encodings = self._tok.encode_batch(list(texts_a))
            return [
                (np.asarray(e.ids, dtype=np.int64), np.asarray(e.type_ids, dtype=np.int64)) for e in encodings
            ]
        if len(texts_b) != len(texts_a):
            raise AutoftError(
                f"encode_batch: expected as many texts_b as texts_a ({len(texts_a)}), found {len(texts_b)}"
            )
        # Pairs: tokenize both sides in bulk, then truncate here. The library's longest-first
        # gives the odd token to b when both sides are equally long; BERT's _truncate_seq_pair
        # (Google, PaddleHub 1.4, HF) gives it to a, and checkpoints were tuned with that.
        a_ids = [e.ids for e in self._tok.encode_batch(list(texts_a), add_special_tokens=False)]
        b_index = [i for i, b in enumerate(texts_b) if b is not None]
        b_encs = self._tok.encode_batch([texts_b[i] for i in b_index], add_special_tokens=False)
        b_ids: List[Optional[list]] = [None] * len(texts_a)
        for i, e in zip(b_index, b_encs):
            b_ids[i] = e.ids
        cls, sep = [self.cls_id], [self.sep_id]
        out = []
        for a, b in zip(a_ids, b_ids):
            if b is None:
                a = a[: max_seq_len - 2]
                ids = cls + a + sep
                out.append((np.asarray(ids, dtype=np.int64), np.zeros(len(ids), dtype=np.int64)))
                continue
            na, nb = truncated_pair_lengths(len(a), len(b), max_seq_len - 3)
            ids = cls + a[:na] + sep + b[:nb] + sep
            types = np.zeros(len(ids), dtype=np.int64)
            types[na + 2 :] = 1
            out.append((np.asarray(ids, dtype=np.int64), types))
        return out

    def lengths(
        self, texts_a: Sequence[str], texts_b: Optional[Sequence[Optional[str]]] = None
    ) -> np.ndarray:
        """Untruncated token counts (with [CLS]/[SEP]) of each example: for `data check`."""
        self._tok.no_truncation()
        self._max_len = None
        if texts_b is None:
            encodings = self._tok.encode_batch(list(texts_a))
        else:
            encodings = self._tok.encode_batch([a if b is None else (a, b) for a, b in zip(texts_a, texts_b)])
        return np.asarray([len(e.ids) for e in encodings], dtype=np.int64)

    def save(self, directory) -> None:
        """Write vocab.txt (byte-identical, so vocab_hash is kept) and tokenizer_config.json."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(d / "vocab.txt", self._vocab_bytes)
        config = {"do_lower_case": self.do_lower_case}
        atomic.write_bytes(
            d / "tokenizer_config.json", (json.dumps(config, indent=2) + "\n").encode("utf-8")
        )

    def __repr__(self) -> str:
        return f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, vocab_hash={self.vocab_hash[:10]})"
