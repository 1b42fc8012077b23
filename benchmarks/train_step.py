"""Train/eval step speed of autoft's BERT classifier on CPU, side by side with the references.

Configurations, all measured in ONE process, interleaved round-robin (so machine noise hits all
of them alike), at each thread count:
  hf        Hugging Face transformers BertForSequenceClassification on PyTorch (the reference)
  autoft    autoft's classifier, CPU path (split heads, mask once, GEMV bias grad, own LN backward)
  native    autoft's classifier, native Paddle ops (the path GPUs take)
  stock     a bare paddle.nn.TransformerEncoder stack of the same shape (stock paddle.nn)
  autoft+B16  autoft with the discriminative parameter groups of blocks=16 (what they cost)
Ratios are time / hf time at the same thread count (< 1.0 = faster than PyTorch).
Peak RSS comes from a separate short child per configuration (ru_maxrss is per process).

    python benchmarks/train_step.py                 # small (4/256) and base (12/768), 1 and 2 threads
    python benchmarks/train_step.py --shapes small --threads 1 --rounds 3
    python benchmarks/train_step.py --demo-epoch    # also one demo epoch, bucketed vs unbucketed
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import siblings as benchmarks.<name>: with benchmarks/ itself on sys.path a sibling file could
# shadow a standard module of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

SHAPES = {
    # name: layers, hidden, heads, ffn, seq, batch, timed steps per round, rounds
    # (short rounds, many of them: each ratio pairs configurations timed seconds apart)
    "small": dict(layers=4, hidden=256, heads=4, ffn=1024, seq=128, batch=16, steps=3, rounds=6),
    "base": dict(layers=12, hidden=768, heads=12, ffn=3072, seq=128, batch=8, steps=1, rounds=2),
}
VOCAB = 21128
CONFIGS = ["hf", "autoft", "native", "stock", "autoft+B16"]


def set_threads(n: int) -> None:
    import paddle
    import torch

    torch.set_num_threads(n)
    paddle.base.core.set_num_threads(n)


# ------------------------------------------------------------------------------------------
# The models and one step of each.
# ------------------------------------------------------------------------------------------


def make_inputs(shape, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    b, s = shape["batch"], shape["seq"]
    ids = rng.integers(1000, VOCAB, size=(b, s)).astype("int64")
    lengths = rng.integers(s // 2, s + 1, size=b)
    lengths[0] = s
    mask = (np.arange(s)[None, :] < lengths[:, None]).astype("int64")
    ids = ids * mask
    types = np.zeros_like(ids)
    labels = rng.integers(0, 2, size=b).astype("int64")
    return ids, types, mask, labels


def build_hf(shape):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=VOCAB, hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], intermediate_size=shape["ffn"], num_labels=2,
    )
    model = BertForSequenceClassification(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    ids, types, mask, labels = (torch.from_numpy(a) for a in make_inputs(shape))

    def train_step():
        model.train()
        out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def eval_step():
        model.eval()
        with torch.no_grad():
            model(input_ids=ids, token_type_ids=types, attention_mask=mask)

    return train_step, eval_step


def _paddle_steps(model, opt, shape):
    import paddle
    import paddle.nn.functional as F

    ids, types, mask, labels = (paddle.to_tensor(a) for a in make_inputs(shape))

    def train_step():
        model.train()
        loss = F.cross_entropy(model(ids, types, mask), labels)
        loss.backward()
        opt.step()
        opt.clear_grad()

    def eval_step():
        model.eval()
        with paddle.no_grad():
            model(ids, types, mask)

    return train_step, eval_step


def build_autoft(shape, fast: bool, blocks: int = 0):
    import paddle

    from autoft.model import BertConfig, BertForSequenceClassification
    from autoft.optim import param_groups

    paddle.seed(0)
    cfg = BertConfig(
        vocab_size=VOCAB, hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], intermediate_size=shape["ffn"],
    )
    model = BertForSequenceClassification(cfg, ["0", "1"])
    model.use_path("cpu" if fast else "native")
    groups, _ = param_groups(model, blocks=blocks, factor=1.1)
    opt = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=groups, weight_decay=0.01)
    return _paddle_steps(model, opt, shape)


def build_stock(shape):
    """Stock paddle.nn: embeddings + nn.TransformerEncoder + pooler + classifier, same shape."""
    import paddle
    from paddle import nn

    paddle.seed(0)
    h = shape["hidden"]

    class Stock(nn.Layer):
        def __init__(self):
            super().__init__()
            self.word = nn.Embedding(VOCAB, h)
            self.pos = nn.Embedding(512, h)
            self.token_type = nn.Embedding(2, h)
            self.norm = nn.LayerNorm(h, epsilon=1e-12)
            self.drop = nn.Dropout(0.1)
            layer = nn.TransformerEncoderLayer(h, shape["heads"], shape["ffn"], dropout=0.1, activation="gelu",
                                               attn_dropout=0.1, act_dropout=0.0)
            self.encoder = nn.TransformerEncoder(layer, shape["layers"])
            self.pooler = nn.Linear(h, h)
            self.classifier = nn.Linear(h, 2)

        def forward(self, ids, types, mask):
            pos = paddle.arange(ids.shape[1], dtype="int64").unsqueeze(0)
            x = self.drop(self.norm(self.word(ids) + self.pos(pos) + self.token_type(types)))
            additive = ((1.0 - mask.astype(x.dtype)) * -1e4).unsqueeze([1, 2])
            x = self.encoder(x, additive)
            pooled = paddle.tanh(self.pooler(x[:, 0]))
            return self.classifier(self.drop(pooled))

    model = Stock()
    opt = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=model.parameters(), weight_decay=0.01)
    return _paddle_steps(model, opt, shape)


def build(config: str, shape):
    if config == "hf":
        return build_hf(shape)
    if config == "autoft":
        return build_autoft(shape, fast=True)
    if config == "native":
        return build_autoft(shape, fast=False)
    if config == "autoft+B16":
        return build_autoft(shape, fast=True, blocks=16)
    if config == "stock":
        return build_stock(shape)
    raise ValueError(config)


# ------------------------------------------------------------------------------------------
# Measurement.
# ------------------------------------------------------------------------------------------


def time_steps(fn, n: int) -> list:
    """[(wall seconds, process CPU seconds)] of n calls."""
    out = []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - w, time.process_time() - c))
    return out


def paired_ratio(times, config: str, kind: str, which: int) -> float:
    """Median over rounds of (config's median step / hf's median step in the same round).

    Pairing by round cancels slow drifts of the machine's load (other jobs), which a ratio of
    overall medians does not.
    """
    per_round = []
    for mine, ref in zip(times[(config, kind)], times[("hf", kind)]):
        per_round.append(statistics.median(t[which] for t in mine) / statistics.median(t[which] for t in ref))
    return statistics.median(per_round)


def measure_shape(name: str, threads_list, rounds: int, configs) -> list:
    shape = SHAPES[name]
    steps = {c: build(c, shape) for c in configs}
    rows = []
    for threads in threads_list:
        set_threads(threads)
        for c in configs:  # warm up every configuration at this thread count
            steps[c][0]()
            steps[c][1]()
        times = {(c, kind): [] for c in configs for kind in ("train", "eval")}
        for _ in range(rounds or shape["rounds"]):
            for c in configs:
                for kind, fn in (("train", steps[c][0]), ("eval", steps[c][1])):
                    # PyTorch's libgomp and Paddle's Intel OpenMP threads spin-wait after a parallel
                    # region (KMP_BLOCKTIME is 200 ms): measured, a 2-thread Paddle GEMM right after a
                    # torch op is 25% slower. Let the previous configuration's threads fall asleep.
                    time.sleep(0.3)
                    times[(c, kind)].append(time_steps(fn, shape["steps"]))
        for kind in ("train", "eval"):
            for c in configs:
                wall = statistics.median(t[0] for r in times[(c, kind)] for t in r)
                rows.append(dict(shape=name, threads=threads, kind=kind, config=c,
                                 samples_per_s=shape["batch"] / wall,
                                 ratio_vs_hf=paired_ratio(times, c, kind, 0),
                                 # 1 thread: process CPU time, insensitive to other jobs on the machine
                                 cpu_ratio_vs_hf=paired_ratio(times, c, kind, 1) if threads == 1 else None))
    return rows


def peak_rss_child(config: str, shape_name: str) -> float:
    """Peak RSS (MiB) of a fresh process that builds ``config`` and runs 2 train steps (the optimizer state exists after the first).

    Read from VmHWM: ru_maxrss survives exec on Linux, so a child would report the parent's peak.
    """
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from autoft import runtime; runtime.import_paddle()\n"
        "import benchmarks.train_step as t\n"
        f"tr, ev = t.build({config!r}, t.SHAPES[{shape_name!r}])\n"
        "[tr() for _ in range(2)]\n"
        "print([int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0] / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return float("nan")
    return float(out.stdout.strip().splitlines()[-1])


def demo_epoch(limit: int) -> list:
    """Wall time of one demo training epoch, batches bucketed by length vs plain shuffled."""
    import paddle
    import paddle.nn.functional as F

    from autoft.data import features as feats_mod
    from autoft.data import load_task
    from autoft.finetune import DatasetDefaults  # noqa: F401  (demo model shape lives in finetune)
    from autoft.model import BertConfig, BertForSequenceClassification
    from autoft.paths import data_home
    from autoft.tokenizer import BertTokenizer

    task = load_task("demo")
    tok = BertTokenizer.from_vocab(data_home("demo") / "vocab.txt")
    feats = feats_mod.encode_split(task, "train", tok, 128)
    if limit and limit < len(feats.input_ids):
        from autoft.finetune import subset

        feats = subset(feats, limit)
    rows = []
    for bucket in (False, True):
        paddle.seed(0)
        cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=128, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=512)
        model = BertForSequenceClassification(cfg, task.labels)
        opt = paddle.optimizer.AdamW(learning_rate=1e-4, parameters=model.parameters())
        n_tokens = 0
        t = time.perf_counter()
        for batch in feats_mod.batches(feats, 32, shuffle=True, seed=0, epoch=0, bucket=bucket):
            loss = F.cross_entropy(model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]),
                                   batch["labels"])
            loss.backward()
            opt.step()
            opt.clear_grad()
            n_tokens += int(batch["input_ids"].size)
        rows.append(dict(bucket=bucket, seconds=time.perf_counter() - t, padded_tokens=n_tokens,
                         examples=len(feats.input_ids)))
    return rows


def versions() -> str:
    import paddle
    import torch
    import transformers

    return f"paddle {paddle.__version__}, torch {torch.__version__}, transformers {transformers.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="small,base")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=0, help="interleaved rounds per thread count (0 = per shape)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS children")
    ap.add_argument("--demo-epoch", action="store_true", help="also time one demo epoch, bucketed vs not")
    ap.add_argument("--demo-limit", type=int, default=0, help="train examples for --demo-epoch (0 = all)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()

    from autoft import runtime

    os.environ.setdefault("OMP_NUM_THREADS", "2")
    line = runtime.setup_process()
    paddle = runtime.import_paddle()
    if args.device == "gpu":
        paddle.set_device("gpu")
    import torch  # noqa: F401  (after paddle: both link OpenMP; this order was tested here)

    from benchmarks.results import append_results, machine_line

    configs = [c for c in args.configs.split(",") if c]
    if "hf" not in configs:
        configs.insert(0, "hf")
    threads = [int(t) for t in args.threads.split(",")]
    rows = []
    load_before = os.getloadavg()
    for shape in args.shapes.split(","):
        rows += measure_shape(shape, threads, args.rounds, configs)
    load = (f"load average (1 min) {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after the timing "
            f"on {len(os.sched_getaffinity(0))} cores")
    print(load)

    lines = ["| shape | threads | step | " + " | ".join(configs) + " |",
             "|---|---|---|" + "---|" * len(configs)]
    for shape in args.shapes.split(","):
        for t in threads:
            for kind in ("train", "eval"):
                cells = []
                for c in configs:
                    r = next(r for r in rows if (r["shape"], r["threads"], r["kind"], r["config"]) == (shape, t, kind, c))
                    cpu = f", cpu {r['cpu_ratio_vs_hf']:.2f}×" if r["cpu_ratio_vs_hf"] is not None else ""
                    cells.append(f"{r['ratio_vs_hf']:.2f}× ({r['samples_per_s']:.1f}/s{cpu})")
                lines.append(f"| {shape} | {t} | {kind} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)

    rss_table = ""
    if not args.no_rss:
        rss = ["| shape | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
        for shape in args.shapes.split(","):
            rss.append(f"| {shape} | " + " | ".join(f"{peak_rss_child(c, shape):.0f} MiB" for c in configs) + " |")
        rss_table = "\n".join(rss)
        print("\npeak RSS (2 train steps, fresh process):\n" + rss_table)

    demo_table = ""
    if args.demo_epoch:
        set_threads(threads[-1])
        d = demo_epoch(args.demo_limit)
        base = d[0]["seconds"]
        demo_table = "\n".join(
            ["| batches | seconds | ratio | padded tokens |", "|---|---|---|---|"]
            + [f"| {'length-bucketed' if r['bucket'] else 'shuffled, padded to longest'} | {r['seconds']:.1f} | "
               f"{r['seconds'] / base:.2f} | {r['padded_tokens']} |" for r in d]
        )
        print(f"\none demo epoch ({d[0]['examples']} examples, batch 32, {threads[-1]} threads):\n" + demo_table)

    if not args.no_append:
        rounds = args.rounds or "; ".join(f"{n} {SHAPES[n]['rounds']}x{SHAPES[n]['steps']} steps"
                                          for n in args.shapes.split(","))
        body = [f"cells: time ratio vs HF transformers + PyTorch at the same thread count, median over "
                f"interleaved rounds of the per-round ratio (samples/s; at 1 thread also the ratio of process "
                f"CPU time, which other jobs on the machine do not inflate); rounds: {rounds}; {line}; {load}",
                "", table]
        if rss_table:
            body += ["", "Peak RSS:", "", rss_table]
        if demo_table:
            body += ["", "One demo epoch:", "", demo_table]
        append_results("train_step", machine_line() + "; " + versions(), "\n".join(body))


if __name__ == "__main__":
    main()
