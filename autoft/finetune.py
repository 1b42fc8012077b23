"""Fine-tune a BERT classifier on one task: the engine behind train.py.

``train`` reads top to bottom, nanoGPT style: ``setup`` builds everything (model, data,
optimizer, schedule, where files go; or picks a run up from its resume checkpoint), the loop
runs batch -> forward -> backward -> step -> log -> evaluate, ``finish`` writes the results.
Discriminative LR, the schedule and gradual unfreezing come from autoft/optim.py as data
(parameter groups, a step -> LR function, a level count per epoch); the loop never branches on
them. Flags: autoft/train_config.py. Resume files: autoft/resume.py.

The best model lands in --saved_params_dir (a tuner trial) or <checkpoint_dir>/best_model,
and the best dev accuracy is handed to ``report_final_result``; every evaluation's accuracy
goes to ``report_intermediate_result``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from autoft import atomic, resume
from autoft.errors import AutoftError
from autoft.train_config import (  # noqa: F401  (re-exported: tests, predict.py, benchmarks)
    DATASET_DEFAULTS,
    DEFAULT_MODEL,
    DEMO_MODEL,
    DatasetDefaults,
    TrainConfig,
    _bool,
    build_parser,
    check_seq_len,
    parse_args,
)
from autoft.visualdl import ScalarLog

log = logging.getLogger("autoft.finetune")


# ---------------------------------------------------------------- device


def installed_paddle() -> str:
    """'paddlepaddle-gpu 2.6.2' / 'paddlepaddle 3.3.1': the wheel(s) that provide ``paddle``
    (read from distribution metadata; also what ``autoft doctor`` reports)."""
    from importlib import metadata

    found = []
    for dist in ("paddlepaddle-gpu", "paddlepaddle"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pass
    return " and ".join(found) or "an unknown Paddle build (no paddlepaddle distribution metadata)"


def gpu_requested(environ=None) -> Optional[str]:
    """The CUDA_VISIBLE_DEVICES value when it names a GPU (not unset, empty or -1), else None."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if value is None or value.strip() in ("", "-1"):
        return None
    return value.strip()


def pick_device(paddle, use_gpu: Optional[bool], amp: str, environ=None) -> str:
    """'gpu' or 'cpu', set as Paddle's device; --amp is dropped with a warning on CPU.

    Never a silent CPU: when CUDA_VISIBLE_DEVICES names a GPU, or --use_gpu True is given, and
    this Paddle cannot use one, an AutoftError says which wheel is installed and how to get the
    GPU one; ``--use_gpu False`` trains on CPU on purpose.
    """
    compiled = paddle.is_compiled_with_cuda()
    has_gpu = compiled and paddle.device.cuda.device_count() > 0
    visible = gpu_requested(environ)
    if not has_gpu and use_gpu is not False and (use_gpu or visible is not None):
        why = (f"CUDA_VISIBLE_DEVICES={visible} names a GPU" if visible is not None else "--use_gpu True asks for a GPU")
        what = ("a CPU-only build" if not compiled else "a CUDA build that sees no GPU (driver, or "
                "CUDA_VISIBLE_DEVICES naming a device that does not exist?)")
        raise AutoftError(
            f"{why}, but the installed Paddle ({installed_paddle()}) is {what}. For the GPU install "
            "paddlepaddle-gpu (PyPI: pip install paddlepaddle-gpu==2.6.2, CUDA 12; Paddle 3.x GPU wheels come "
            "from Paddle's own index, https://www.paddlepaddle.org.cn/install), or pass --use_gpu False "
            "to train on CPU on purpose")
    device = "gpu" if (has_gpu if use_gpu is None else use_gpu) else "cpu"
    paddle.set_device(device)
    if device == "cpu" and amp != "none":
        log.warning("--amp=%s ignored on CPU (Paddle has no CPU mixed-precision kernels)", amp)
    return device


# ---------------------------------------------------------------- model and data


def build_model(cfg: TrainConfig, task):
    """(model, tokenizer, vocab_file, how) for the run: warm start from --model_path, the demo's
    small model from scratch, or a pretrained encoder plus a new classifier head."""
    from autoft import checkpoint
    from autoft.model import BertConfig, BertForSequenceClassification
    from autoft.tokenizer import BertTokenizer

    if cfg.model_path:
        path = Path(cfg.model_path)
        model = checkpoint.load_classifier(path)
        check_labels(model.labels, task.labels, path, task.name)
        return model, BertTokenizer.from_dir(path), path / "vocab.txt", f"warm start from {path}"
    if cfg.uses_demo_model():
        vocab_file = Path(task.data_dir) / "vocab.txt"
        tokenizer = BertTokenizer.from_vocab(vocab_file)
        config = BertConfig(vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id, **DEMO_MODEL)
        return BertForSequenceClassification(config, list(task.labels)), tokenizer, vocab_file, \
            "demo model from scratch"
    model_dir = checkpoint.resolve_model_dir(cfg.model or DEFAULT_MODEL, cfg.model_dir)
    encoder = checkpoint.load_pretrained(model_dir)
    # "zeros" skips a random init of a whole encoder that is replaced right away; the new
    # head then gets BERT's N(0, initializer_range) weights and a zero bias.
    model = BertForSequenceClassification(encoder.config, list(task.labels), init="zeros")
    model.bert = encoder
    import paddle

    normal = paddle.nn.initializer.Normal(0.0, encoder.config.initializer_range)
    normal(model.classifier.weight)
    return model, BertTokenizer.from_dir(model_dir), Path(model_dir) / "vocab.txt", f"pretrained {model_dir}"


def require_dev_labels(task) -> None:
    """train.py picks the best model by dev accuracy: the dev split must be labelled."""
    if not task.has_labels("dev"):
        raise AutoftError(f"{task.data_dir}: the dev split has no labels; train.py needs them to pick the best model")


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


def evaluate(paddle, model, features, batch_size: int, amp_dtype: Optional[str] = None) -> tuple:
    """(accuracy, mean cross-entropy) on labelled features, under no_grad, in length buckets;
    under auto_cast when ``amp_dtype`` is given (the loss is computed in float32 either way)."""
    import paddle.nn.functional as F

    from autoft.data import features as feats

    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with paddle.no_grad(), paddle.amp.auto_cast(enable=amp_dtype is not None, dtype=amp_dtype or "float16"):
        for batch in feats.batches(features, batch_size, shuffle=False, seed=0, bucket=True):
            logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).astype("float32")
            gold = batch["labels"].reshape([-1])
            loss_sum += float(F.cross_entropy(logits, gold, reduction="sum"))
            correct += int((logits.argmax(axis=-1) == gold).astype("int64").sum())
            total += int(gold.shape[0])
    model.train()
    return correct / max(total, 1), loss_sum / max(total, 1)


# ---------------------------------------------------------------- the best keeper


@dataclass
class BestKeeper:
    """Keeps the model with the highest dev accuracy in ``best_dir``; equal accuracy (common on
    small dev sets) goes to the lower dev loss, i.e. the more confident model."""

    best_dir: Path
    save: Callable[[dict], None]  # writes the model with this train_state.json
    score: Optional[float] = None
    dev_loss: Optional[float] = None
    epoch: int = 0
    step: int = 0

    def offer(self, acc: float, dev_loss: float, epoch: int, step: int, extra: Callable[[], dict]) -> bool:
        """Save the model if it beats the best so far; True when it did."""
        if self.score is not None and (acc, -dev_loss) <= (self.score, -self.dev_loss):
            return False
        self.score, self.dev_loss, self.epoch, self.step = acc, dev_loss, epoch, step
        self.save(dict(self.state(), **extra()))
        return True

    def state(self) -> dict:
        return {"score": self.score, "dev_loss": self.dev_loss, "epoch": self.epoch, "step": self.step}

    def load(self, state: dict) -> None:
        self.score, self.dev_loss = state["score"], state["dev_loss"]
        self.epoch, self.step = state["epoch"], state["step"]


# ---------------------------------------------------------------- setup


@dataclass
class Run:
    """Everything ``setup`` builds for the loop."""

    cfg: TrainConfig
    paddle: object
    device: str
    model: object
    train_set: object
    dev_set: object
    opt: object
    lr_at: Callable[[int], float]
    scaler: object
    amp_dtype: Optional[str]  # set when training (and evaluation) run under auto_cast
    n_levels: int
    micro_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    block_mults: dict
    ckpt_dir: Optional[Path]  # None for a tuner trial: only the best model is kept
    resume_dir: Path
    keeper: BestKeeper
    scalars: ScalarLog
    reseed_each_step: bool
    position: resume.Position = field(default_factory=resume.Position)
    history: list = field(default_factory=list)
    first_loss: Optional[float] = None
    elapsed_before: float = 0.0  # seconds spent before a resume
    t_start: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.t_start

    def record(self) -> dict:
        """train_state.json's body: best, first loss, every evaluation (schema: docs/finetune.md)."""
        return dict(self.keeper.state(), first_loss=self.first_loss, history=list(self.history),
                    hparams=self.cfg.to_dict(), dataset=self.cfg.dataset, elapsed_seconds=self.elapsed())


def output_dirs(cfg: TrainConfig) -> tuple:
    """(checkpoint dir or None, best model dir, resume dir).

    A tuner trial (--saved_params_dir without --checkpoint_dir) keeps only its best model, written
    straight into --saved_params_dir, and its resume state beside it in ``<dir>.resume`` (never
    inside: that dir must hold only the model). A standalone run uses --checkpoint_dir, default
    ./ckpt_<dataset>, with best_model/ and resume/ inside.
    """
    if cfg.saved_params_dir and not cfg.checkpoint_dir:
        saved = Path(cfg.saved_params_dir)
        return None, saved, saved.with_name(saved.name + ".resume")
    ckpt = Path(cfg.checkpoint_dir or f"ckpt_{cfg.dataset}")
    return ckpt, ckpt / "best_model", ckpt / "resume"


def setup(cfg: TrainConfig) -> Run:
    """Build the run: device, seeds, data, model, optimizer, schedule, output dirs; then, unless
    --no_resume, continue from the resume checkpoint if one is there."""
    from autoft import checkpoint, optim, runtime
    from autoft.data import features as feats
    from autoft.data import load_task

    paddle = runtime.import_paddle()
    t_start = time.time()
    device = pick_device(paddle, cfg.use_gpu, cfg.amp)
    resume.seed_all(paddle, cfg.seed)
    task = load_task(cfg.dataset, cfg.data_dir)
    model, tokenizer, vocab_file, how = build_model(cfg, task)
    check_seq_len(cfg.max_seq_len, model.config.max_position_embeddings, "the model")
    cache = not cfg.no_cache
    train_set = subset(feats.encode_split(task, "train", tokenizer, cfg.max_seq_len, cache=cache),
                       cfg.max_train_examples)
    require_dev_labels(task)
    dev_set = feats.encode_split(task, "dev", tokenizer, cfg.max_seq_len, cache=cache)
    n_train = len(train_set.input_ids)

    # Optimizer: one param group per (block, decay); a group's learning_rate multiplies the
    # global LR that the loop sets every step. Clipping is done by hand in the loop because
    # Paddle clips each param group separately, which would not be a *global* norm.
    groups, infos = optim.param_groups(model, cfg.blocks, cfg.factor, cfg.dis_mode, cfg.weight_decay)
    opt = paddle.optimizer.AdamW(learning_rate=cfg.learning_rate, parameters=groups, beta1=0.9, beta2=0.999,
                                 epsilon=1e-8, weight_decay=cfg.weight_decay)
    micro_per_epoch = math.ceil(n_train / cfg.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    lr_at = optim.make_schedule(cfg.learning_rate, total_steps, cfg.warmup, cfg.start_point, 0.0,
                                cfg.cut_fraction, cfg.ratio, cfg.noam)
    block_mults = {}
    for info in infos:  # one LR curve per block for VisualDL (decay/no-decay share it)
        block_mults.setdefault(info.name.split("/")[0], info.multiplier)
    use_amp = device == "gpu" and cfg.amp != "none"
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if use_amp and cfg.amp == "fp16" else None

    ckpt_dir, best_dir, resume_dir = output_dirs(cfg)
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    save_best = lambda extra: checkpoint.save_pretrained(  # noqa: E731
        model, best_dir, vocab_file, do_lower_case=tokenizer.do_lower_case, extra=extra)
    scalars = ScalarLog.disabled("a tuner trial: its curves are not kept")  # a run's own: opened below
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    log.info("%s: %s, %d parameters, %d levels, %d param groups, device %s", cfg.dataset, how, n_params,
             len(model.levels()), len(groups), device)
    log.info("train %d / dev %d examples; %d epochs x %d steps (batch %d x accum %d), lr %g, blocks %d, "
             "factor %g (%s)", n_train, len(dev_set.input_ids), cfg.epochs, steps_per_epoch, cfg.batch_size,
             cfg.grad_accum, cfg.learning_rate, cfg.blocks, cfg.factor, cfg.dis_mode)
    run = Run(cfg, paddle, device, model, train_set, dev_set, opt, lr_at, scaler,
              ("float16" if cfg.amp == "fp16" else "bfloat16") if use_amp else None, len(model.levels()),
              micro_per_epoch, steps_per_epoch, total_steps, block_mults, ckpt_dir, resume_dir,
              BestKeeper(best_dir, save_best), scalars,
              reseed_each_step=device == "cpu" and not resume.engine_exportable(paddle), t_start=t_start)
    if cfg.no_resume:
        resume.clear(resume_dir)
    resumed = not cfg.no_resume and _resume_from(run, resume.load(resume_dir))
    if ckpt_dir is not None:  # a run that starts over replaces the old curves; a resumed one goes on
        run.scalars = ScalarLog.open(ckpt_dir / "visualdl", fresh=not resumed, resumed=resumed)
    return run


def _resume_from(run: Run, saved: Optional[resume.ResumeState]) -> bool:
    """Continue from ``saved`` (weights, optimizer, RNG, position, keeper, history); False when
    there is nothing to continue from (the run starts over)."""
    if saved is None:
        return False
    from autoft import checkpoint

    best_weights = run.keeper.best_dir / checkpoint.WEIGHTS
    if saved.keeper["score"] is not None and not best_weights.is_file():
        # The state's best model is gone (deleted by hand, or by a tuner cleaning up): a resumed
        # run could not hand back the model its score belongs to.
        log.warning("%s: not resuming, its best model %s is missing; starting over", saved.directory, best_weights)
        resume.clear(saved.directory)
        return False

    diffs = TrainConfig.from_dict(saved.config).training_differences(run.cfg)
    if diffs:
        raise AutoftError(f"{saved.directory}: the resume state was written with other flags: {'; '.join(diffs)}. "
                          "Rerun with the same flags, or pass --no_resume to start over")
    weights = {k[len("model/"):]: v for k, v in saved.arrays.items() if k.startswith("model/")}
    checkpoint.assign_state(run.model, weights, str(saved.directory))
    resume.restore_optimizer(run.opt, saved.arrays)
    resume.restore_scaler(run.scaler, saved.scaler)
    resume.restore_rng(run.paddle, saved.rng, saved.arrays, run.device)
    run.keeper.load(saved.keeper)
    run.history = list(saved.run["history"])
    run.first_loss = saved.run["first_loss"]
    run.elapsed_before = float(saved.run["elapsed_seconds"])
    run.position = saved.position
    log.info("resumed from step %d of %d (epoch %d, %d of %d batches done) in %s", saved.position.step,
             run.total_steps, saved.position.epoch, saved.position.micro, run.micro_per_epoch, saved.directory)
    return True


def save_resume(run: Run, position: resume.Position) -> None:
    """Write the resume checkpoint for ``position`` (the next batch to train)."""
    from autoft import checkpoint

    arrays = {f"model/{k}": v for k, v in checkpoint.state_of(run.model).items()}
    arrays.update(resume.optimizer_arrays(run.opt))
    rng, rng_arrays = resume.capture_rng(run.paddle, run.device)
    arrays.update(rng_arrays)
    body = {"history": run.history, "first_loss": run.first_loss, "elapsed_seconds": run.elapsed()}
    resume.save(run.resume_dir, position, arrays, run.keeper.state(), body, run.cfg.to_dict(), rng,
                resume.scaler_state(run.scaler))


# ---------------------------------------------------------------- the loop


def train(cfg: TrainConfig) -> dict:
    """Fine-tune per ``cfg`` (from ``parse_args``; a Namespace is accepted too). Returns the
    train state of the run (score = best dev accuracy, epoch, step, first_loss, history, ...)."""
    from autoft import optim
    from autoft.data import features as feats

    if not isinstance(cfg, TrainConfig):
        cfg = TrainConfig.from_dict(vars(cfg))
    run = setup(cfg)
    paddle, model = run.paddle, run.model
    start, step = run.position, run.position.step
    model.train()
    for epoch in range(start.epoch, cfg.epochs + 1):
        n_trainable = optim.trainable_level_count(run.n_levels, cfg.frz_blocks, epoch)
        frozen = optim.apply_unfreezing(model, n_trainable)
        if cfg.frz_blocks > 0:
            log.info("epoch %d: top %d of %d levels train (%d params frozen)", epoch, n_trainable, run.n_levels,
                     len(frozen))
        skip = start.micro if epoch == start.epoch else 0
        batches = feats.batches(run.train_set, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch - 1)
        bar = _progress_bar(run, epoch, done=skip // cfg.grad_accum)
        for micro, batch in enumerate(batches, start=1):
            if micro <= skip:
                continue  # trained before the resume
            if run.reseed_each_step and (micro - 1) % cfg.grad_accum == 0:
                paddle.seed(resume.step_seed(cfg.seed, step))
            loss = forward_backward(run, batch)
            if micro == 1 and step == 0:
                first_loss = loss  # a device tensor: read at the first log step
            if micro % cfg.grad_accum and micro != run.micro_per_epoch:
                continue  # accumulate; the epoch's last micro-batch always steps
            lr = optimizer_step(run, step)
            step += 1
            bar.update(1)
            if step % cfg.log_interval == 0 or step == 1:
                if run.first_loss is None:
                    run.first_loss = _finite_loss(first_loss, 0, cfg)
                    log.info("first-step loss %.6f", run.first_loss)
                log_step(run, epoch, step, _finite_loss(loss, step, cfg), lr, bar)
            if step % run.steps_per_epoch == 0:
                continue  # the epoch-end evaluation and resume point follow
            if cfg.eval_interval and step % cfg.eval_interval == 0:
                evaluate_and_keep(run, epoch, step)
                save_resume(run, resume.Position(step, epoch, micro))
            elif cfg.save_interval and step % cfg.save_interval == 0:
                save_resume(run, resume.Position(step, epoch, micro))
        bar.close()
        evaluate_and_keep(run, epoch, step)
        if epoch < cfg.epochs and _same_trainable_set(run, epoch):
            save_resume(run, resume.Position(step, epoch + 1, 0))
    return finish(run)


def forward_backward(run: Run, batch):
    """The micro-batch's loss (a device tensor, not synced); gradients accumulate."""
    import paddle.nn.functional as F

    paddle = run.paddle
    with paddle.amp.auto_cast(enable=run.amp_dtype is not None, dtype=run.amp_dtype or "float16"):
        logits = run.model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits.astype("float32"), batch["labels"].reshape([-1]))
    scaled = loss / run.cfg.grad_accum
    (run.scaler.scale(scaled) if run.scaler else scaled).backward()
    return loss


def optimizer_step(run: Run, step: int) -> float:
    """Set the step's LR, (unscale,) clip, step, clear; returns the global LR."""
    paddle, opt, scaler = run.paddle, run.opt, run.scaler
    # The one place the LR is set: global LR from the schedule; Paddle multiplies it by each
    # group's "learning_rate" (its discriminative multiplier).
    lr = run.lr_at(step)
    opt.set_lr(lr)
    if scaler:
        scaler.unscale_(opt)
    if run.cfg.clip > 0:
        paddle.nn.utils.clip_grad_norm_([p for p in run.model.parameters() if not p.stop_gradient], run.cfg.clip)
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    opt.clear_grad()
    return lr


def _finite_loss(loss, step: int, cfg: TrainConfig) -> float:
    """The loss as a float (a host sync); divergence is checked here, i.e. at log steps."""
    value = float(loss)
    if not math.isfinite(value):
        raise AutoftError(f"training diverged: loss {value} at step {step} "
                          f"(lower --learning_rate, currently {cfg.learning_rate})")
    return value


def log_step(run: Run, epoch: int, step: int, loss: float, lr: float, bar) -> None:
    run.scalars.add("train/loss", loss, step)
    for name, mult in run.block_mults.items():
        run.scalars.add(f"lr/{name}", lr * mult, step)
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}")
    if bar.disable:
        log.info("epoch %d step %d/%d loss %.4f lr %.3g", epoch, step, run.total_steps, loss, lr)


def _progress_bar(run: Run, epoch: int, done: int):
    from tqdm import tqdm

    return tqdm(total=run.steps_per_epoch, initial=done, desc=f"epoch {epoch}", disable=not sys.stderr.isatty(),
                leave=False)


def _same_trainable_set(run: Run, epoch: int) -> bool:
    """False when gradual unfreezing trains more levels in the next epoch. Paddle's optimizer
    restores saved moments only when every parameter that steps first after the resume has
    one, so no resume point is written at such an epoch end (the next one is)."""
    from autoft import optim

    cfg = run.cfg
    return (optim.trainable_level_count(run.n_levels, cfg.frz_blocks, epoch)
            == optim.trainable_level_count(run.n_levels, cfg.frz_blocks, epoch + 1))


def evaluate_and_keep(run: Run, epoch: int, step: int) -> None:
    """Dev accuracy and loss; keep the best model; report to VisualDL and the tuner."""
    from autoft.report import report_intermediate_result

    acc, dev_loss = evaluate(run.paddle, run.model, run.dev_set, run.cfg.eval_batch_size, run.amp_dtype)
    run.history.append({"epoch": epoch, "step": step, "dev_accuracy": acc, "dev_loss": dev_loss})
    run.scalars.add("dev/accuracy", acc, step)
    run.scalars.add("dev/loss", dev_loss, step)
    better = run.keeper.offer(acc, dev_loss, epoch, step, run.record)
    log.info("epoch %d step %d: dev accuracy %.4f, loss %.4f%s", epoch, step, acc, dev_loss,
             " (best so far)" if better else "")
    report_intermediate_result(acc, step)


def finish(run: Run) -> dict:
    """Close the logs, write the run's train_state.json, copy the best model where asked, drop
    the resume state (a rerun then starts over)."""
    run.scalars.close()
    state = run.record()
    best_dir = run.keeper.best_dir
    log.info("best dev accuracy %.4f (epoch %d, step %d), %.1f s; best model in %s", state["score"],
             state["epoch"], state["step"], state["elapsed_seconds"], best_dir)
    if run.ckpt_dir is not None:
        # The whole run (every evaluation) beside best_model/, whose own train_state.json stops
        # at the evaluation that produced it.
        atomic.write_json(run.ckpt_dir / "train_state.json", dict(state, best_dir=str(best_dir)))
        if run.cfg.saved_params_dir:
            atomic.copy_dir(best_dir, Path(run.cfg.saved_params_dir))
            log.info("best model copied to %s", run.cfg.saved_params_dir)
    resume.clear(run.resume_dir)
    return dict(state, best_dir=str(best_dir))


# ---------------------------------------------------------------- entry point


def main(argv: Optional[Sequence[str]] = None) -> int:
    """train.py: fine-tune, keep the best model, report best dev accuracy to the tuner
    (``--check``: only check that a run could start)."""
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if cfg.check:
        from autoft.train_check import check

        print("\n".join(check(cfg)), flush=True)
        return 0
    result = train(cfg)
    from autoft import report_final_result

    print(json.dumps({"best_dev_accuracy": result["score"], "epoch": result["epoch"],
                      "first_loss": result["first_loss"]}), flush=True)
    report_final_result(result["score"])
    return 0
