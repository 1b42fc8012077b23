"""Features: one tokenization per split, the on-disk cache, padded length-bucketed batches."""

import numpy as np
import pytest

from autoft.data import features as F
from autoft.data import load_task
from autoft.tokenizer import BertTokenizer

CHARS = "我你他好坏很不是的书买了天气今一二三四五六七八九十"


@pytest.fixture
def task_and_tok(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOFT_HOME", str(tmp_path / "home"))  # a cache of its own per test
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 230), ("dev", 40)):
        lines = []
        for _ in range(n):
            a = "".join(rng.choice(list(CHARS), size=int(rng.integers(1, 40))))
            b = "".join(rng.choice(list(CHARS), size=int(rng.integers(1, 10))))
            lines.append(f"{rng.choice(['x', 'y', 'z'])}\t{a}\t{b}\n")
        (data / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
    (data / "test.tsv").write_text("id\ttext_a\ttext_b\n7\t好书\t不错\n8\t很坏\t差\n", encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS]) + "\n", encoding="utf-8")
    return load_task("custom", data), BertTokenizer.from_vocab(vocab)


class CountingTokenizer:
    """The real tokenizer, counting encode_batch calls."""

    def __init__(self, tok):
        self.tok, self.calls = tok, 0
        self.vocab_hash, self.do_lower_case, self.pad_id = tok.vocab_hash, tok.do_lower_case, tok.pad_id

    def encode_batch(self, *args, **kwargs):
        self.calls += 1
        return self.tok.encode_batch(*args, **kwargs)


def test_split_tokenized_in_one_call_then_served_from_cache(task_and_tok):
    task, tok = task_and_tok
    counting = CountingTokenizer(tok)
    first = F.encode_split(task, "train", counting, max_seq_len=24)
    assert counting.calls == 1 and not first.from_cache and len(first) == 230
    examples = task.read("train")
    expected = tok.encode_batch([e.text_a for e in examples], [e.text_b for e in examples], max_seq_len=24)
    assert all(np.array_equal(ids, exp) for ids, (exp, _) in zip(first.input_ids, expected))
    assert first.labels.tolist() == [task.labels.index(e.label) for e in examples]

    second = F.encode_split(task, "train", counting, max_seq_len=24)
    assert counting.calls == 1 and second.from_cache  # no re-tokenization
    assert second.guids == first.guids and np.array_equal(second.labels, first.labels)
    assert all(a.dtype == np.int64 and np.array_equal(a, b) for a, b in zip(second.input_ids, first.input_ids))
    assert all(np.array_equal(a, b) for a, b in zip(second.token_type_ids, first.token_type_ids))
    assert max(second.lengths) == 24
    cache_files = list(F.cache_dir().glob("custom-train-*"))
    assert len(cache_files) == 1 and cache_files[0].suffix == ".npz"  # no temp files left behind


def test_cache_invalidated_by_file_content_and_max_seq_len(task_and_tok):
    task, tok = task_and_tok
    counting = CountingTokenizer(tok)
    F.encode_split(task, "dev", counting, max_seq_len=16)
    F.encode_split(task, "dev", counting, max_seq_len=20)
    assert counting.calls == 2
    path = task.source_file("dev")
    path.write_text(path.read_text(encoding="utf-8") + "x\t新的一行\t好\n", encoding="utf-8")
    fresh = load_task("custom", task.data_dir)
    feats = F.encode_split(fresh, "dev", counting, max_seq_len=16)
    assert counting.calls == 3 and len(feats) == 41 and not feats.from_cache
    assert F.encode_split(fresh, "dev", counting, max_seq_len=16).from_cache and counting.calls == 3


def test_unreadable_cache_entry_is_rebuilt(task_and_tok):
    task, tok = task_and_tok
    F.encode_split(task, "dev", tok, max_seq_len=16)
    (entry,) = F.cache_dir().glob("custom-dev-*")
    entry.write_bytes(b"half a file")
    counting = CountingTokenizer(tok)
    assert not F.encode_split(task, "dev", counting, max_seq_len=16).from_cache and counting.calls == 1
    assert F.encode_split(task, "dev", counting, max_seq_len=16).from_cache


def test_unlabeled_test_split_keeps_ids_in_file_order(task_and_tok):
    task, tok = task_and_tok
    feats = F.encode_split(task, "test", tok, max_seq_len=16)
    assert feats.labels is None and feats.guids == ["7", "8"]
    assert F.encode_split(task, "test", tok, max_seq_len=16).labels is None


def test_training_batches_padded_to_longest_each_example_once(task_and_tok):
    task, tok = task_and_tok
    feats = F.encode_split(task, "train", tok, max_seq_len=32)
    epoch0 = list(F.batches(feats, 16, shuffle=True, seed=3, epoch=0, as_numpy=True))
    seen = np.concatenate([b["index"] for b in epoch0])
    assert sorted(seen.tolist()) == list(range(len(feats)))
    for b in epoch0:
        lengths = feats.lengths[b["index"]]
        assert b["input_ids"].shape == (len(b["index"]), lengths.max())
        assert b["attention_mask"].sum(axis=1).tolist() == lengths.tolist()
        assert (b["input_ids"][b["attention_mask"] == 0] == tok.pad_id).all()
        assert b["labels"].tolist() == feats.labels[b["index"]].tolist()
        row = int(np.argmin(lengths))
        i = b["index"][row]
        assert b["input_ids"][row, : lengths[row]].tolist() == feats.input_ids[i].tolist()
        assert b["token_type_ids"][row, : lengths[row]].tolist() == feats.token_type_ids[i].tolist()
        assert all(v.dtype == np.int64 for k, v in b.items())
    again = list(F.batches(feats, 16, shuffle=True, seed=3, epoch=0, as_numpy=True))
    assert [b["index"].tolist() for b in again] == [b["index"].tolist() for b in epoch0]
    epoch1 = list(F.batches(feats, 16, shuffle=True, seed=3, epoch=1, as_numpy=True))
    assert [b["index"].tolist() for b in epoch1] != [b["index"].tolist() for b in epoch0]


def test_bucketing_reduces_padding():
    lengths = np.random.default_rng(1).integers(3, 128, size=2000)

    def padded(bucket):
        return sum(len(ix) * lengths[ix].max() for ix in F.batch_indices(lengths, 16, True, seed=0, bucket=bucket))

    assert padded(True) < 0.8 * padded(False)
    bucketed = F.batch_indices(lengths, 16, True, seed=0, bucket=True)
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(2000))


def test_evaluation_batches_in_file_order_unless_asked(task_and_tok):
    task, tok = task_and_tok
    feats = F.encode_split(task, "dev", tok, max_seq_len=32)
    plain = list(F.batches(feats, 7, shuffle=False, as_numpy=True))
    assert np.concatenate([b["index"] for b in plain]).tolist() == list(range(len(feats)))
    sorted_batches = list(F.batches(feats, 7, shuffle=False, bucket=True, as_numpy=True))
    order = np.concatenate([b["index"] for b in sorted_batches])
    assert order.tolist() != list(range(len(feats)))
    assert np.all(np.diff(feats.lengths[order]) >= 0)
    # Per-batch outputs (here each example's first label) come back in file order.
    restored = F.restore_order([b["index"] for b in sorted_batches], [b["labels"] for b in sorted_batches])
    assert restored.tolist() == feats.labels.tolist()


def test_batches_are_paddle_int64_tensors(task_and_tok):
    task, tok = task_and_tok
    feats = F.encode_split(task, "dev", tok, max_seq_len=32)
    batch = next(F.batches(feats, 8, shuffle=True, seed=0))
    import paddle

    for key in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        assert isinstance(batch[key], paddle.Tensor) and batch[key].dtype == paddle.int64
    assert batch["input_ids"].shape[0] == 8 and batch["labels"].shape == [8]
