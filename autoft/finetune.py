"""Fine-tune a BERT classifier on one task: the engine behind train.py.

Flat on purpose (nanoGPT style): ``main`` parses flags, ``train`` builds everything and runs
one loop you can read top to bottom — batch, forward, backward, clip, set LR, step, log,
evaluate, keep the best model. Discriminative LR, the schedule and gradual unfreezing come
from autoft/optim.py as data (parameter groups, a step -> LR function, a level count per
epoch); the loop never branches on them.

Flags keep the seed's names and PaddleHub AutoDL Finetuner meaning
(../shared/reference/autofinetune.md §3-§4): the tuner runs
``python -u train.py [--epochs=1 --model_path DIR] --saved_params_dir=DIR --learning_rate=..
--blocks=.. --factor=.. dataset <name>``; the best model lands in --saved_params_dir and the
best dev accuracy is handed to ``report_final_result``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from autoft import atomic
from autoft.errors import AutoftError

log = logging.getLogger("autoft.finetune")

DEFAULT_MODEL = "roberta-wwm-ext-large"


@dataclass(frozen=True)
class DatasetDefaults:
    batch_size: int
    max_seq_len: int
    epochs: int
    learning_rate: float


# The seed's per-dataset settings (reference/datasets.md). The demo trains a small model
# from scratch, which wants a much larger LR than fine-tuning does (measured: docs/finetune.md).
DATASET_DEFAULTS: Dict[str, DatasetDefaults] = {
    "tnews": DatasetDefaults(16, 128, 3, 5e-5),
    "lcqmc": DatasetDefaults(16, 128, 3, 5e-5),
    "xnli": DatasetDefaults(32, 128, 2, 5e-5),
    "inews": DatasetDefaults(4, 512, 3, 5e-5),
    "custom": DatasetDefaults(16, 128, 3, 5e-5),
    "demo": DatasetDefaults(32, 128, 2, 1e-3),
}

# The demo's from-scratch model (measured to reach >= 78% dev accuracy in minutes on 2 cores).
DEMO_MODEL = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                  max_position_embeddings=128, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


# ---------------------------------------------------------------- flags


def _bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, found {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Fine-tune a Chinese BERT/RoBERTa classifier with discriminative learning rates "
                    "(PaddleHub 1.4 CombinedStrategy semantics). Unset values take the dataset's defaults.")
    a = p.add_argument
    # The seed's flags, same names and meaning.
    a("--dataset", type=str, default=None, help="tnews | lcqmc | xnli | inews | custom | demo")
    a("--learning_rate", type=float, default=None, help="peak LR (default: 5e-5; demo 1e-3)")
    a("--blocks", type=int, default=16, help="discriminative LR blocks (0 = off)")
    a("--factor", type=float, default=1.1, help="LR divisor from one block to the next one down")
    a("--saved_params_dir", type=str, default=None, help="copy the best model here (tuner trials)")
    a("--model_path", type=str, default=None, help="warm start: a saved classifier dir (labels must match)")
    a("--checkpoint_dir", type=str, default=None, help="best_model/ and visualdl/ go here")
    a("--epochs", type=int, default=None)
    # Ours.
    a("--model", type=str, default=None, help=f"pretrained model name or path (default {DEFAULT_MODEL}; "
      "demo: a small model from scratch)")
    a("--model_dir", type=str, default=None, help="directory holding the pretrained model")
    a("--data_dir", type=str, default=None, help="task files (default $AUTOFT_HOME/data/<dataset>)")
    a("--batch_size", type=int, default=None)
    a("--max_seq_len", type=int, default=None)
    a("--use_gpu", type=_bool, default=None, help="True/False (default: GPU when Paddle has one)")
    a("--seed", type=int, default=1)
    a("--amp", choices=["none", "fp16", "bf16"], default="none", help="mixed precision (GPU only)")
    a("--warmup", type=float, default=0.1, help="warmup proportion of the steps")
    a("--start_point", type=float, default=0.9, help="linear decay starts at this fraction")
    a("--frz_blocks", type=int, default=0, help="gradual unfreezing over this many epochs (0 = off)")
    a("--cut_fraction", type=float, default=0.0, help="> 0: slanted triangular LR instead")
    a("--ratio", type=float, default=32.0, help="slanted triangular LR ratio")
    a("--noam", action="store_true", help="noam decay instead of linear decay")
    a("--dis_mode", choices=["levels", "layers"], default="levels",
      help="levels: PaddleHub 1.4 op-depth levels; layers: per transformer layer")
    a("--weight_decay", type=float, default=0.01)
    a("--clip", type=float, default=0.0, help="clip gradients to this global norm (0 = off)")
    a("--grad_accum", type=int, default=1, help="micro-batches per optimizer step")
    a("--eval_interval", type=int, default=0, help="also evaluate every N steps (0 = epoch ends only)")
    a("--eval_batch_size", type=int, default=None)
    a("--max_train_examples", type=int, default=0, help="train on a fixed random subset of this size")
    a("--log_interval", type=int, default=20)
    a("--no_cache", action="store_true", help="do not cache tokenized features")
    return p


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Parse flags; PaddleHub-style trailing ``key value`` pairs (``dataset demo``) are
    accepted as ``--key=value``. Fills dataset defaults. Raises AutoftError on bad values."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(args_in)
        if rest:
            if len(rest) % 2 or any(t.startswith("-") for t in rest[::2]):
                raise AutoftError(f"train.py: unknown flags or an odd number of trailing key value "
                                  f"tokens: {' '.join(rest)} (see train.py --help)")
            pairs = [f"--{k}={v}" for k, v in zip(rest[::2], rest[1::2])]
            args = parser.parse_args(pairs, namespace=args)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise AutoftError(f"train.py: bad flags {' '.join(args_in)} (see train.py --help)") from None
    if not args.dataset:
        raise AutoftError("--dataset: expected one of tnews, lcqmc, xnli, inews, custom, demo; found nothing")
    args.dataset = args.dataset.lower()
    d = DATASET_DEFAULTS.get(args.dataset, DATASET_DEFAULTS["custom"])
    for name in ("batch_size", "max_seq_len", "epochs", "learning_rate"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(d, name))
    if args.eval_batch_size is None:
        args.eval_batch_size = max(args.batch_size * 4, 32)
    for name in ("batch_size", "max_seq_len", "grad_accum", "eval_batch_size"):
        if getattr(args, name) < 1:
            raise AutoftError(f"--{name}: expected a positive integer, found {getattr(args, name)}")
    if args.epochs < 1:
        raise AutoftError(f"--epochs: expected >= 1, found {args.epochs}")
    if not (args.learning_rate > 0 and math.isfinite(args.learning_rate)):
        raise AutoftError(f"--learning_rate: expected a number > 0, found {args.learning_rate}")
    if args.blocks > 0 and not args.factor > 0:
        raise AutoftError(f"--factor: expected a number > 0, found {args.factor}")
    if not 0 <= args.warmup <= 1 or not 0 <= args.start_point <= 1 or not 0 <= args.cut_fraction < 1:
        raise AutoftError("--warmup/--start_point: expected 0..1, --cut_fraction 0..<1; found "
                          f"{args.warmup}/{args.start_point}/{args.cut_fraction}")
    return args


# ---------------------------------------------------------------- setup helpers


def set_seed(paddle, seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def pick_device(paddle, use_gpu: Optional[bool], amp: str) -> str:
    """'gpu' or 'cpu'; --amp is dropped with a warning on CPU."""
    has_gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if use_gpu and not has_gpu:
        raise AutoftError("--use_gpu=True: this Paddle has no usable GPU (install paddlepaddle-gpu, "
                          "check CUDA_VISIBLE_DEVICES), or pass --use_gpu=False")
    device = "gpu" if (has_gpu if use_gpu is None else use_gpu) else "cpu"
    paddle.set_device(device)
    if device == "cpu" and amp != "none":
        log.warning("--amp=%s ignored on CPU (Paddle has no CPU mixed-precision kernels)", amp)
    return device


def build_model(args, task):
    """(model, tokenizer, vocab_file, how) for the run: warm start from --model_path, the demo's
    small model from scratch, or a pretrained encoder plus a new classifier head."""
    from autoft import checkpoint
    from autoft.model import BertConfig, BertForSequenceClassification
    from autoft.tokenizer import BertTokenizer

    if args.model_path:
        path = Path(args.model_path)
        model = checkpoint.load_classifier(path)
        check_labels(model.labels, task.labels, path, task.name)
        return model, BertTokenizer.from_dir(path), path / "vocab.txt", f"warm start from {path}"
    if args.dataset == "demo" and args.model is None and args.model_dir is None:
        vocab_file = Path(task.data_dir) / "vocab.txt"
        tokenizer = BertTokenizer.from_vocab(vocab_file)
        config = BertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id,
                            max_position_embeddings=max(DEMO_MODEL["max_position_embeddings"], args.max_seq_len),
                            **{k: v for k, v in DEMO_MODEL.items() if k != "max_position_embeddings"})
        return BertForSequenceClassification(config, list(task.labels)), tokenizer, vocab_file, \
            "demo model from scratch"
    model_dir = checkpoint.resolve_model_dir(args.model or DEFAULT_MODEL, args.model_dir)
    encoder = checkpoint.load_pretrained(model_dir)
    # "zeros" skips a random init of a whole encoder that is replaced right away; the new
    # head then gets BERT's N(0, initializer_range) weights and a zero bias.
    model = BertForSequenceClassification(encoder.config, list(task.labels), init="zeros")
    model.bert = encoder
    import paddle

    normal = paddle.nn.initializer.Normal(0.0, encoder.config.initializer_range)
    normal(model.classifier.weight)
    return model, BertTokenizer.from_dir(model_dir), Path(model_dir) / "vocab.txt", f"pretrained {model_dir}"


def check_labels(found: Sequence[str], expected: Sequence[str], path, task_name: str) -> None:
    if list(found) != list(expected):
        raise AutoftError(f"{path}/labels.json: the checkpoint's labels {list(found)} do not match "
                          f"the {task_name} task's labels {list(expected)} (same strings, same order)")


def subset(features, n: int, seed: int = 0):
    """A fixed random subset of ``n`` examples (same for every trial: seed 0), order kept."""
    import dataclasses

    total = len(features.input_ids)
    if n <= 0 or n >= total:
        return features
    keep = np.sort(np.random.RandomState(seed).choice(total, n, replace=False))
    fields = {}
    for f in dataclasses.fields(features):
        v = getattr(features, f.name)
        if isinstance(v, np.ndarray) and len(v) == total:
            fields[f.name] = v[keep]
        elif isinstance(v, list) and len(v) == total:
            fields[f.name] = [v[i] for i in keep]
        else:
            fields[f.name] = v
    return dataclasses.replace(features, **fields)


def evaluate(paddle, model, features, batch_size: int) -> tuple:
    """(accuracy, mean cross-entropy) on labelled features, under no_grad, in length buckets."""
    import paddle.nn.functional as F

    from autoft.data import features as feats

    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with paddle.no_grad():
        for batch in feats.batches(features, batch_size, shuffle=False, seed=0, bucket=True):
            logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
            gold = batch["labels"].reshape([-1])
            loss_sum += float(F.cross_entropy(logits.astype("float32"), gold, reduction="sum"))
            correct += int((logits.argmax(axis=-1) == gold).astype("int64").sum())
            total += int(gold.shape[0])
    model.train()
    return correct / max(total, 1), loss_sum / max(total, 1)


class Scalars:
    """VisualDL scalars when visualdl imports, else nothing (training must not depend on it)."""

    def __init__(self, logdir: Path):
        try:
            from visualdl import LogWriter

            self.writer = LogWriter(logdir=str(logdir))
        except Exception as exc:  # a broken visualdl install must not stop training
            log.warning("VisualDL disabled: %s", exc)
            self.writer = None

    def add(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ---------------------------------------------------------------- the run


def train(args: argparse.Namespace) -> dict:
    """Fine-tune per ``args`` (from ``parse_args``). Returns the train state of the best model
    (score = best dev accuracy, epoch, step, first_loss, hparams, ...)."""
    from autoft import runtime

    paddle = runtime.import_paddle()
    import paddle.nn.functional as F

    from autoft import checkpoint, optim
    from autoft.data import features as feats
    from autoft.data import load_task

    t_start = time.time()
    device = pick_device(paddle, args.use_gpu, args.amp)
    set_seed(paddle, args.seed)
    task = load_task(args.dataset, args.data_dir)
    if not task.has_labels("dev"):
        raise AutoftError(f"{task.data_dir}: the dev split has no labels; train.py needs them to pick the best model")
    model, tokenizer, vocab_file, how = build_model(args, task)
    if args.max_seq_len > model.config.max_position_embeddings:
        raise AutoftError(f"--max_seq_len {args.max_seq_len}: the model has only "
                          f"{model.config.max_position_embeddings} positions (max_position_embeddings)")
    cache = not args.no_cache
    train_set = subset(feats.encode_split(task, "train", tokenizer, args.max_seq_len, cache=cache),
                       args.max_train_examples)
    dev_set = feats.encode_split(task, "dev", tokenizer, args.max_seq_len, cache=cache)
    n_train = len(train_set.input_ids)
    if n_train == 0:
        raise AutoftError(f"{task.data_dir}: the train split is empty")

    # Checkpoint dir: a tuner trial that names none gets a temporary one (only
    # --saved_params_dir matters to the tuner), a standalone run gets ./ckpt_<dataset>.
    tmp_ckpt = None
    if args.checkpoint_dir:
        ckpt_dir = Path(args.checkpoint_dir)
    elif args.saved_params_dir:
        tmp_ckpt = ckpt_dir = Path(tempfile.mkdtemp(prefix="autoft-ckpt-"))
    else:
        ckpt_dir = Path(f"ckpt_{args.dataset}")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    best_dir = ckpt_dir / "best_model"

    # Optimizer: one param group per (block, decay); a group's learning_rate multiplies the
    # global LR that the loop sets every step. Clipping is done by hand below because
    # Paddle clips each param group separately, which would not be a *global* norm.
    groups, infos = optim.param_groups(model, args.blocks, args.factor, args.dis_mode, args.weight_decay)
    opt = paddle.optimizer.AdamW(learning_rate=args.learning_rate, parameters=groups, beta1=0.9, beta2=0.999,
                                 epsilon=1e-8, weight_decay=args.weight_decay)
    n_levels = len(model.levels())
    micro_per_epoch = math.ceil(n_train / args.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / args.grad_accum)
    total_steps = steps_per_epoch * args.epochs
    lr_at = optim.make_schedule(args.learning_rate, total_steps, args.warmup, args.start_point, 0.0,
                                args.cut_fraction, args.ratio, args.noam)
    block_mults = {}
    for info in infos:  # one LR curve per block for VisualDL (decay/no-decay share it)
        block_mults.setdefault(info.name.split("/")[0], info.multiplier)

    use_amp = device == "gpu" and args.amp != "none"
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if use_amp and args.amp == "fp16" else None
    amp_dtype = "float16" if args.amp == "fp16" else "bfloat16"

    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    log.info("%s: %s, %d parameters, %d levels, %d param groups, device %s", args.dataset, how, n_params,
             n_levels, len(groups), device)
    log.info("train %d / dev %d examples; %d epochs x %d steps (batch %d x accum %d), lr %g, blocks %d, "
             "factor %g (%s)", n_train, len(dev_set.input_ids), args.epochs, steps_per_epoch, args.batch_size,
             args.grad_accum, args.learning_rate, args.blocks, args.factor, args.dis_mode)

    scalars = Scalars(ckpt_dir / "visualdl")
    hparams = {k: v for k, v in vars(args).items()}
    state = {"score": None, "dev_loss": None, "epoch": 0, "step": 0, "first_loss": None, "history": []}
    step = 0

    def evaluate_and_keep(epoch: int) -> None:
        acc, dev_loss = evaluate(paddle, model, dev_set, args.eval_batch_size)
        state["history"].append({"epoch": epoch, "step": step, "dev_accuracy": acc, "dev_loss": dev_loss})
        scalars.add("dev/accuracy", acc, step)
        scalars.add("dev/loss", dev_loss, step)
        # Best = highest dev accuracy; equal accuracy (common on small dev sets) goes to the
        # lower dev loss, i.e. the more confident model.
        better = state["score"] is None or (acc, -dev_loss) > (state["score"], -state["dev_loss"])
        log.info("epoch %d step %d: dev accuracy %.4f, loss %.4f%s", epoch, step, acc, dev_loss,
                 " (best so far)" if better else "")
        if better:
            state.update(score=acc, dev_loss=dev_loss, epoch=epoch, step=step)
            extra = dict(state, hparams=hparams, dataset=args.dataset, elapsed_seconds=time.time() - t_start)
            checkpoint.save_pretrained(model, best_dir, vocab_file, do_lower_case=tokenizer.do_lower_case,
                                       extra=extra)

    from tqdm import tqdm

    model.train()
    for epoch in range(1, args.epochs + 1):
        n_trainable = optim.trainable_level_count(n_levels, args.frz_blocks, epoch)
        frozen = optim.apply_unfreezing(model, n_trainable)
        if args.frz_blocks > 0:
            log.info("epoch %d: top %d of %d levels train (%d params frozen)", epoch, n_trainable, n_levels,
                     len(frozen))
        batches = feats.batches(train_set, args.batch_size, shuffle=True, seed=args.seed, epoch=epoch - 1)
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", disable=not sys.stderr.isatty(), leave=False)
        for micro, batch in enumerate(batches, start=1):
            with paddle.amp.auto_cast(enable=use_amp, dtype=amp_dtype):
                logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
                loss = F.cross_entropy(logits.astype("float32"), batch["labels"].reshape([-1]))
            loss_value = float(loss)
            if not math.isfinite(loss_value):
                raise AutoftError(f"training diverged: loss {loss_value} at step {step} "
                                  f"(lower --learning_rate, currently {args.learning_rate})")
            if state["first_loss"] is None:
                state["first_loss"] = loss_value
                log.info("first-step loss %.6f", loss_value)
            scaled = loss / args.grad_accum
            (scaler.scale(scaled) if scaler else scaled).backward()
            if micro % args.grad_accum and micro != micro_per_epoch:
                continue  # accumulate; the epoch's last micro-batch always steps

            # The one place the LR is set: global LR from the schedule; Paddle multiplies it
            # by each group's "learning_rate" (its discriminative multiplier).
            lr = lr_at(step)
            opt.set_lr(lr)
            if scaler:
                scaler.unscale_(opt)
            if args.clip > 0:
                paddle.nn.utils.clip_grad_norm_([p for p in model.parameters() if not p.stop_gradient], args.clip)
            if scaler:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            opt.clear_grad()
            step += 1

            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.3g}")
            if step % args.log_interval == 0 or step == 1:
                scalars.add("train/loss", loss_value, step)
                for name, mult in block_mults.items():
                    scalars.add(f"lr/{name}", lr * mult, step)
                if bar.disable:
                    log.info("epoch %d step %d/%d loss %.4f lr %.3g", epoch, step, total_steps, loss_value, lr)
            if args.eval_interval and step % args.eval_interval == 0 and step % steps_per_epoch:
                evaluate_and_keep(epoch)
        bar.close()
        evaluate_and_keep(epoch)

    scalars.close()
    state["elapsed_seconds"] = time.time() - t_start
    log.info("best dev accuracy %.4f (epoch %d, step %d), %.1f s; best model in %s", state["score"],
             state["epoch"], state["step"], state["elapsed_seconds"], best_dir)
    # The whole run (every evaluation) beside best_model/, whose own train_state.json stops
    # at the evaluation that produced it.
    atomic.write_json(ckpt_dir / "train_state.json", dict(state, hparams=hparams, dataset=args.dataset,
                                                          best_dir=str(best_dir)))
    if args.saved_params_dir:
        atomic.copy_dir(best_dir, Path(args.saved_params_dir))
        log.info("best model copied to %s", args.saved_params_dir)
    if tmp_ckpt is not None:
        shutil.rmtree(tmp_ckpt, ignore_errors=True)
    return dict(state, best_dir=str(best_dir))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """train.py: fine-tune, keep the best model, report best dev accuracy to the tuner."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    result = train(args)
    from autoft import report_final_result

    print(json.dumps({"best_dev_accuracy": result["score"], "epoch": result["epoch"],
                      "first_loss": result["first_loss"]}), flush=True)
    report_final_result(result["score"])
    return 0
