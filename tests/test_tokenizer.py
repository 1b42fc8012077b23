"""BertTokenizer (Rust `tokenizers`) against the reference Python BertTokenizer, token for token."""

import json
import warnings

import numpy as np
import pytest

from autoft.errors import AutoftError
from autoft.tokenizer import BertTokenizer, truncated_pair_lengths

# A small vocab in the HFL layout: specials at 0 and 100-103, CJK characters, Latin word
# pieces, digits, full-width punctuation and symbols.
_PIECES = (
    "的 一 是 我 你 好 中 国 人 天 气 温 度 元 价 格 书 很 不 错 买 了 今 年 月 日 北 京 上 海 "
    "hello world wor ##ld ##s ##ing play ##er un ##aff ##able cafe resume naive "
    "a b c e i n o r s t u ##a ##b ##c ##e ##i ##n ##o ##r ##s ##t ##u "
    "0 1 2 3 4 5 6 7 8 9 10 100 ##0 ##00 ##1 ##2 ##3 ##5 "
    "， 。 ！ ？ 、 ： ； （ ） 《 》 “ ” ‘ ’ ℃ ￥ % , . ! ? ( ) - ' \" # @ ~ ～ … ° "
    "ａ ｂ ｃ １ ２ ３ ① ² ½"
).split()


def _vocab_lines():
    lines = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(lines)
    for p in _PIECES:
        if p not in seen:
            seen.add(p)
            lines.append(p)
    return lines


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(_vocab_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(vocab_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
    return BertTokenizerLegacy(str(vocab_file), do_lower_case=True)


TRICKY = [
    "今天气温25℃，价格￥100元！",
    "Hello World我很好",
    "playing unaffable PLAYERS",
    "Café résumé naïve",
    "ＡＢＣ１２３，全角字符",
    "表情😀😂不错👍",
    "2019年10月1日 北京→上海",
    "a" * 101 + " b",
    "a" * 100,
    "\t 中\u3000国 \n人\r\n",
    "“书”很好‘是’《的》…～~",
    "",
    "   ",
    "x\u200by\u0000z\ufeff",
    "①②③ ² ½ 3°",
    "naïve-hello_world@#",
    "[UNK]你好[SEP]",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tokens_match_reference_bert_tokenizer(vocab_file, reference, text):
    tok = BertTokenizer.from_vocab(vocab_file)
    assert tok.tokenize(text) == reference.tokenize(text)


def test_literal_tokens_on_mixed_text(vocab_file):
    tok = BertTokenizer.from_vocab(vocab_file)
    # ℃ and ￥ are symbols, not punctuation: they stay inside their word ("25℃" has no
    # WordPiece split here, so the whole word is [UNK]); CJK characters are always split.
    assert tok.tokenize("今天气温25℃，价格￥100元！") == [
        "今", "天", "气", "温", "[UNK]", "，", "价", "格", "￥", "##1", "##00", "元", "！",
    ]
    assert tok.tokenize("今天 25 ℃") == ["今", "天", "2", "##5", "℃"]
    assert tok.tokenize("Hello WORLDs playing") == ["hello", "world", "##s", "play", "##ing"]
    assert tok.tokenize("Café") == ["cafe"]
    assert tok.tokenize("a" * 101) == ["[UNK]"]
    assert tok.tokenize("表情😀") == ["[UNK]", "[UNK]", "[UNK]"]


def test_case_kept_without_lower_casing(vocab_file, tmp_path):
    (tmp_path / "vocab.txt").write_bytes(vocab_file.read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    tok = BertTokenizer.from_dir(tmp_path)
    assert tok.do_lower_case is False
    # Upper-case pieces are not in the vocab; accents are kept (no strip without lower-casing).
    assert tok.tokenize("Hello hello") == ["[UNK]", "hello"]
    assert tok.tokenize("café") == ["[UNK]"]


def test_special_ids_come_from_the_vocab(vocab_file, tmp_path):
    tok = BertTokenizer.from_vocab(vocab_file)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id) == (0, 100, 101, 102)
    demo = tmp_path / "vocab.txt"
    demo.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n好\n书\n", encoding="utf-8")
    small = BertTokenizer.from_vocab(demo)
    assert (small.pad_id, small.unk_id, small.cls_id, small.sep_id, small.vocab_size) == (0, 1, 2, 3, 7)
    ids, types = small.encode_batch(["好书!"])[0]
    assert ids.tolist() == [2, 5, 6, 1, 3]
    assert types.tolist() == [0, 0, 0, 0, 0]


def test_pairs_truncate_longest_first_like_reference(vocab_file, reference):
    tok = BertTokenizer.from_vocab(vocab_file)
    a = ["今天天气很好我是中国人", "好", "北京上海北京上海北京上海", "一二", "我很好"]
    b = ["不错", "今年的书价格很不错不错不错", "北京上海北京上海北京上海", None, ""]
    for max_len in (6, 9, 12, 64):
        got = tok.encode_batch(a, b, max_seq_len=max_len)
        for (ids, types), ta, tb in zip(got, a, b):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = reference(ta, tb, truncation="longest_first", max_length=max_len, return_token_type_ids=True)
            assert ids.dtype == np.int64 and types.dtype == np.int64
            assert ids.tolist() == ref["input_ids"], (ta, tb, max_len)
            assert types.tolist() == ref["token_type_ids"], (ta, tb, max_len)


def test_pair_truncation_lengths_match_pop_one_at_a_time():
    def pop(a, b, budget):
        while a + b > budget:
            if a > b:
                a -= 1
            else:
                b -= 1
        return a, b

    for a in range(25):
        for b in range(25):
            for budget in range(30):
                assert truncated_pair_lengths(a, b, budget) == pop(a, b, budget), (a, b, budget)


def test_pair_layout_literal(vocab_file):
    tok = BertTokenizer.from_vocab(vocab_file)
    (ids, types), = tok.encode_batch(["我很好好好"], ["你"], max_seq_len=7)
    v = tok.vocab
    # 5 + 1 + 3 specials = 9 > 7: two tokens come off the longer first text.
    assert ids.tolist() == [101, v["我"], v["很"], v["好"], 102, v["你"], 102]
    assert types.tolist() == [0, 0, 0, 0, 0, 1, 1]


def test_vocab_hash_and_save_roundtrip(vocab_file, tmp_path):
    import hashlib

    tok = BertTokenizer.from_vocab(vocab_file, do_lower_case=False)
    assert tok.vocab_hash == hashlib.sha1(vocab_file.read_bytes()).hexdigest()
    tok.save(tmp_path / "out")
    again = BertTokenizer.from_dir(tmp_path / "out")
    assert again.vocab_hash == tok.vocab_hash and again.do_lower_case is False
    assert json.loads((tmp_path / "out" / "tokenizer_config.json").read_text()) == {"do_lower_case": False}


def test_missing_vocab_names_the_path(tmp_path):
    with pytest.raises(AutoftError, match=f"{tmp_path / 'nope' / 'vocab.txt'}.*not found"):
        BertTokenizer.from_dir(tmp_path / "nope")
    with pytest.raises(AutoftError, match="vocab.txt: vocabulary file not found"):
        BertTokenizer.from_vocab(tmp_path / "vocab.txt")
    bad = tmp_path / "v.txt"
    bad.write_text("[PAD]\n[UNK]\n好\n", encoding="utf-8")
    with pytest.raises(AutoftError, match=r"v.txt: expected the special tokens .* missing \[CLS\], \[SEP\]"):
        BertTokenizer.from_vocab(bad)


def test_max_seq_len_too_small_is_rejected(vocab_file):
    tok = BertTokenizer.from_vocab(vocab_file)
    with pytest.raises(AutoftError, match="max_seq_len: expected at least 3"):
        tok.encode_batch(["好"], max_seq_len=2)


def test_single_texts_truncate_like_reference(vocab_file, reference):
    tok = BertTokenizer.from_vocab(vocab_file)
    texts = ["今天天气很好我是中国人", "好", "", "hello world playing 100"]
    for max_len in (3, 5, 8, 128):
        got = tok.encode_batch(texts, max_seq_len=max_len)
        for (ids, types), text in zip(got, texts):
            ref = reference(text, truncation=True, max_length=max_len)["input_ids"]
            assert ids.tolist() == ref and types.tolist() == [0] * len(ref), (text, max_len)
    assert tok.lengths(texts).tolist() == [13, 3, 2, 7]
