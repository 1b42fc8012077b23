"""Benchmark: read + tokenize a 100k-pair split, cold and from the feature cache, against a
plain-Python BERT tokenizer (transformers' slow BertTokenizer, BertTokenizerLegacy in 5.x).

Not a test. Builds the demo set if needed, writes a 100k-line pair split (custom TSV layout)
from its reviews into a temp dir, then times in one run:
  cold    load_task + read + encode_split (one encode_batch call) + cache write
  cached  a fresh load_task + encode_split served from the cache
  python  the slow tokenizer on a subset (its rate is examples/s, so subsets compare)
Prints a table and appends it to benchmarks/RESULTS.md.

    python benchmarks/tokenize.py [--pairs 100000] [--python_pairs 5000] [--max_seq_len 128]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib module `tokenize`: drop its directory from the import
# path before anything (linecache, transformers) imports the real one.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--python_pairs", type=int, default=5_000)
    ap.add_argument("--max_seq_len", type=int, default=128)
    args = ap.parse_args()

    from autoft.runtime import setup_process

    setup_process()
    import numpy as np
    import tokenizers

    from autoft.data import features as F
    from autoft.data import load_task
    from autoft.tokenizer import BertTokenizer

    demo = load_task("demo")
    tok = BertTokenizer.from_dir(demo.data_dir)
    texts = [e.text_a for e in demo.read("train")]
    rng = np.random.default_rng(0)
    a_idx = rng.integers(0, len(texts), size=args.pairs)
    b_idx = rng.integers(0, len(texts), size=args.pairs)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUTOFT_HOME"] = str(Path(tmp) / "home")  # an empty cache for the cold run
        data = Path(tmp) / "pairs"
        data.mkdir()
        with open(data / "train.tsv", "w", encoding="utf-8") as f:
            for i, (a, b) in enumerate(zip(a_idx, b_idx)):
                f.write(f"{'pos' if i % 2 else 'neg'}\t{texts[a]}\t{texts[b]}\n")
        size_mb = (data / "train.tsv").stat().st_size / 1e6

        t0 = time.perf_counter()
        task = load_task("custom", data)
        examples = task.read("train")
        t_read = time.perf_counter() - t0
        feats = F.encode_split(task, "train", tok, args.max_seq_len)
        t_cold = time.perf_counter() - t0
        assert not feats.from_cache and len(feats) == args.pairs

        t0 = time.perf_counter()
        cached = F.encode_split(load_task("custom", data), "train", tok, args.max_seq_len)
        t_cached = time.perf_counter() - t0
        assert cached.from_cache

        rows.append(("read only (TSV parse, validate)", args.pairs, t_read))
        rows.append(("cold: read + tokenize + cache write", args.pairs, t_cold))
        rows.append(("cached: hash + load", args.pairs, t_cached))

        sub = examples[: args.python_pairs]
        t0 = time.perf_counter()
        tok.encode_batch([e.text_a for e in sub], [e.text_b for e in sub], max_seq_len=args.max_seq_len)
        t_fast_sub = time.perf_counter() - t0
        rows.append(("autoft tokenizer only (subset)", len(sub), t_fast_sub))
        t_slow = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import transformers
                from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

                transformers.logging.set_verbosity_error()  # one truncation warning per pair otherwise

                slow = BertTokenizerLegacy(str(demo.data_dir / "vocab.txt"), do_lower_case=True)
                t0 = time.perf_counter()
                slow_out = [
                    slow(e.text_a, e.text_b, truncation="longest_first", max_length=args.max_seq_len)["input_ids"]
                    for e in sub
                ]
                t_slow = time.perf_counter() - t0
            fast_out = [ids.tolist() for ids, _ in tok.encode_batch([e.text_a for e in sub], [e.text_b for e in sub], args.max_seq_len)]
            same = sum(x == y for x, y in zip(fast_out, slow_out))
            rows.append(("python BertTokenizer (transformers slow)", len(sub), t_slow))
            ver_tf = transformers.__version__
        except ImportError:
            same, ver_tf = None, "not installed"

    rate = {name: n / t for name, n, t in rows}
    lines = [
        f"### tokenize ({datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, tokenizers {tokenizers.__version__}, transformers {ver_tf}, "
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}, "
        f"load average {os.getloadavg()[0]:.1f} at the end)",
        "",
        f"{args.pairs} sentence pairs from the demo reviews ({size_mb:.1f} MB TSV), max_seq_len {args.max_seq_len}, "
        f"demo vocab ({tok.vocab_size} tokens).",
        "",
        "| step | examples | seconds | examples/s |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {n} | {t:.2f} | {n / t:,.0f} |" for name, n, t in rows]
    lines.append("")
    if t_slow is not None:
        lines.append(
            f"autoft tokenizer vs plain-Python BertTokenizer on the same {len(sub)} pairs: "
            f"{rate['autoft tokenizer only (subset)'] / rate['python BertTokenizer (transformers slow)']:.1f}x faster "
            f"(identical ids on {same}/{len(sub)}); cold read+tokenize of the full split vs the Python tokenizer alone: "
            f"{rate['cold: read + tokenize + cache write'] / rate['python BertTokenizer (transformers slow)']:.1f}x; "
            f"cached vs cold: {t_cold / t_cached:.1f}x."
        )
    else:
        lines.append(f"cached vs cold: {t_cold / t_cached:.1f}x (transformers not installed: no Python baseline).")
    text = "\n".join(lines) + "\n"
    print(text)
    results = ROOT / "benchmarks" / "RESULTS.md"
    with open(results, "a", encoding="utf-8") as f:  # append only: other benchmarks write here too
        f.write("\n" + text)
    print(f"appended to {results}")


if __name__ == "__main__":
    main()
