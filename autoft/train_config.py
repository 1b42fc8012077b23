"""train.py's flags as one dataclass, TrainConfig: parsed, validated, and the ``hparams`` of
train_state.json (docs/finetune.md lists the schema).

Flags keep the seed's names and PaddleHub AutoDL Finetuner meaning: the tuner runs
``python -u train.py [--epochs=1 --model_path DIR] --saved_params_dir=DIR --learning_rate=..
--blocks=.. --factor=.. dataset <name>`` (trailing ``key value`` pairs are PaddleHub's way of
passing options). Imports nothing heavy: the tuner's check and tests parse flags without Paddle.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence

from autoft.errors import ArgumentParser, AutoftError

DEFAULT_MODEL = "roberta-wwm-ext-large"
DATASETS = ("tnews", "lcqmc", "xnli", "inews", "custom", "demo")


@dataclass(frozen=True)
class DatasetDefaults:
    batch_size: int
    max_seq_len: int
    epochs: int
    learning_rate: float


# The seed's per-dataset settings. The demo trains a small model from scratch, which wants a
# much larger LR than fine-tuning does (measured: docs/finetune.md).
DATASET_DEFAULTS: Dict[str, DatasetDefaults] = {
    "tnews": DatasetDefaults(16, 128, 3, 5e-5),
    "lcqmc": DatasetDefaults(16, 128, 3, 5e-5),
    "xnli": DatasetDefaults(32, 128, 2, 5e-5),
    "inews": DatasetDefaults(4, 512, 3, 5e-5),
    "custom": DatasetDefaults(16, 128, 3, 5e-5),
    "demo": DatasetDefaults(32, 128, 2, 1e-3),
}

# The demo's from-scratch model (measured to reach >= 78% dev accuracy in minutes on 2 cores).
# Its 512 positions bound --max_seq_len for the demo (train.py uses 128 unless told; the demo search tries 256).
DEMO_MODEL = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
                  max_position_embeddings=512, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


@dataclass
class TrainConfig:
    """Everything one run of train.py was asked to do (the flags after dataset defaults).

    Saved as ``hparams`` in train_state.json; ``from_dict`` reads that back, also from files
    written before this class existed (then ``vars(args)``: unknown keys are ignored, missing
    ones take their defaults).
    """

    dataset: str = "custom"
    learning_rate: float = 5e-5
    blocks: int = 16
    factor: float = 1.1
    saved_params_dir: Optional[str] = None
    model_path: Optional[str] = None
    checkpoint_dir: Optional[str] = None
    epochs: int = 3
    model: Optional[str] = None
    model_dir: Optional[str] = None
    data_dir: Optional[str] = None
    batch_size: int = 16
    max_seq_len: int = 128
    use_gpu: Optional[bool] = None
    seed: int = 1
    amp: str = "none"
    warmup: float = 0.1
    start_point: float = 0.9
    frz_blocks: int = 0
    cut_fraction: float = 0.0
    ratio: float = 32.0
    noam: bool = False
    dis_mode: str = "levels"
    weight_decay: float = 0.01
    clip: float = 0.0
    grad_accum: int = 1
    eval_interval: int = 0
    eval_batch_size: int = 128
    max_train_examples: int = 0
    log_interval: int = 20
    save_interval: int = 0
    no_resume: bool = False
    no_cache: bool = False
    check: bool = False
    extra: Dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    # Flags that do not change what is trained: a resume may differ in them.
    RUN_ONLY = ("saved_params_dir", "checkpoint_dir", "use_gpu", "log_interval", "save_interval",
                "no_resume", "no_cache", "check", "eval_batch_size", "data_dir", "model_dir")

    def to_dict(self) -> dict:
        """The JSON form (``hparams`` of train_state.json)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        """Read ``hparams`` back; keys this version does not know are kept in ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in raw.items() if k in names}
        return cls(**known, extra={k: v for k, v in raw.items() if k not in names})

    def uses_demo_model(self) -> bool:
        """The demo's small model from scratch: --dataset demo with none of --model, --model_dir,
        --model_path."""
        return self.dataset == "demo" and self.model is None and self.model_dir is None and not self.model_path

    def training_differences(self, other: TrainConfig) -> list:
        """``flag: a != b`` for every flag that changes training, as strings."""
        out = []
        for f in dataclasses.fields(self):
            if f.name in self.RUN_ONLY or f.name == "extra":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a != b:
                out.append(f"--{f.name} {b} (saved: {a})")
        return out


def read_train_state(path) -> tuple:
    """(TrainConfig, the rest of the dict) of a train_state.json, old or new."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutoftError(f"{path}: file not found (expected train.py's train_state.json)") from None
    except (OSError, ValueError) as exc:
        raise AutoftError(f"{path}: cannot read train.py's train state: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("hparams", {}), dict):
        raise AutoftError(f"{path}: expected a JSON object with an 'hparams' object")
    rest = {k: v for k, v in raw.items() if k != "hparams"}
    return TrainConfig.from_dict(raw.get("hparams", {})), rest


# ---------------------------------------------------------------- flags


def _bool(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, found {text!r}")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None: those flags say in words what they default to."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action, argparse._StoreTrueAction):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="train.py", formatter_class=_HelpFormatter,
        description="Fine-tune a Chinese BERT/RoBERTa classifier with discriminative learning rates "
                    "(PaddleHub 1.4 CombinedStrategy semantics). Unset values take the dataset's defaults; "
                    "details in docs/finetune.md.")
    a = p.add_argument
    # The seed's flags, same names and meaning.
    a("--dataset", type=str, default=None, help="tnews | lcqmc | xnli | inews | custom | demo (required)")
    a("--learning_rate", type=float, default=None, help="peak LR, > 0 (default: 5e-5; demo 1e-3)")
    a("--blocks", type=int, default=16, help="discriminative LR blocks, >= 0 (0 = off)")
    a("--factor", type=float, default=1.1, help="LR divisor from one block to the next one down, > 0")
    a("--saved_params_dir", type=str, default=None,
      help="write the best model here (tuner trials; default: none)")
    a("--model_path", type=str, default=None,
      help="warm start from a saved classifier dir, labels must match (default: none)")
    a("--checkpoint_dir", type=str, default=None,
      help="best_model/, train_state.json, visualdl/ and resume/ go here (default: ckpt_<dataset>; "
           "a tuner trial: <saved_params_dir>.resume)")
    a("--epochs", type=int, default=None, help="epochs, >= 1 (default: per dataset, 2 or 3)")
    # Ours.
    a("--model", type=str, default=None, help=f"pretrained model name or path (default: {DEFAULT_MODEL}; "
      "demo: a small model from scratch)")
    a("--model_dir", type=str, default=None, help="directory holding the pretrained model "
      "(default: $AUTOFT_HOME/models/<model>)")
    a("--data_dir", type=str, default=None, help="task files (default: $AUTOFT_HOME/data/<dataset>)")
    a("--batch_size", type=int, default=None, help="micro-batch size, >= 1 (default: per dataset)")
    a("--max_seq_len", type=int, default=None,
      help="tokens per example, 3 .. the model's positions (default: per dataset)")
    a("--use_gpu", type=_bool, default=None,
      help="True/False (default: the GPU when Paddle has one; an error when CUDA_VISIBLE_DEVICES names a "
           "GPU that this Paddle cannot use)")
    a("--seed", type=int, default=1, help="paddle, numpy and random seeds and the shuffling seed, 0 .. 2^32-1")
    a("--amp", choices=["none", "fp16", "bf16"], default="none",
      help="mixed precision for training and evaluation (GPU only)")
    a("--warmup", type=float, default=0.1, help="warmup proportion of the steps, 0 .. 1")
    a("--start_point", type=float, default=0.9, help="linear decay starts at this fraction, 0 .. 1")
    a("--frz_blocks", type=int, default=0, help="gradual unfreezing over this many epochs, >= 0 (0 = off)")
    a("--cut_fraction", type=float, default=0.0, help="0 .. <1; > 0: slanted triangular LR instead")
    a("--ratio", type=float, default=32.0, help="slanted triangular LR ratio, >= 1")
    a("--noam", action="store_true", help="noam decay instead of linear decay")
    a("--dis_mode", choices=["levels", "layers"], default="levels",
      help="levels: PaddleHub 1.4 op-depth levels; layers: per transformer layer")
    a("--weight_decay", type=float, default=0.01, help="decoupled weight decay, >= 0")
    a("--clip", type=float, default=0.0, help="clip gradients to this global norm, >= 0 (0 = off)")
    a("--grad_accum", type=int, default=1, help="micro-batches per optimizer step, >= 1")
    a("--eval_interval", type=int, default=0, help="also evaluate every N steps, >= 0 (0 = epoch ends only)")
    a("--eval_batch_size", type=int, default=None, help="evaluation batch, >= 1 (default: max(4 x batch, 32))")
    a("--max_train_examples", type=int, default=0,
      help="train on a fixed random subset of this size, >= 0 (0 = all)")
    a("--log_interval", type=int, default=20,
      help="log (and check the loss for divergence) every N steps, >= 1; the loss stays on the device between")
    a("--save_interval", type=int, default=0,
      help="also write the resume checkpoint every N steps, >= 0 (0 = at evaluations only)")
    a("--no_resume", action="store_true", help="start over even if the checkpoint dir holds a resume state")
    a("--no_cache", action="store_true", help="do not cache tokenized features")
    a("--check", action="store_true",
      help="check data, model, labels, device and flags as a run would, print 'check OK: ...', exit")
    return p


def parse_args(argv: Optional[Sequence[str]]) -> TrainConfig:
    """Parse flags; PaddleHub-style trailing ``key value`` pairs (``dataset demo``) are
    accepted as ``--key=value``. Fills dataset defaults. Raises AutoftError on bad values
    (argparse's own errors are one line and exit 2)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(args_in)
    if rest:
        if len(rest) % 2 or any(t.startswith("-") for t in rest[::2]):
            raise AutoftError(f"train.py: unknown flags or an odd number of trailing key value "
                              f"tokens: {' '.join(rest)} (see train.py --help)")
        pairs = [f"--{k}={v}" for k, v in zip(rest[::2], rest[1::2])]
        args = parser.parse_args(pairs, namespace=args)
    if not args.dataset:
        raise AutoftError(f"--dataset: expected one of {', '.join(DATASETS)}; found nothing")
    args.dataset = args.dataset.lower()
    d = DATASET_DEFAULTS.get(args.dataset, DATASET_DEFAULTS["custom"])
    for name in ("batch_size", "max_seq_len", "epochs", "learning_rate"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(d, name))
    if args.eval_batch_size is None:
        args.eval_batch_size = max(args.batch_size * 4, 32)
    values = vars(args)
    values.pop("debug", None)  # run_cli's flag, when parse_args is called directly
    cfg = TrainConfig(**values)
    validate(cfg)
    return cfg


# (flag, low, high, low inclusive, high inclusive); None = unbounded.
_RANGES = [
    ("learning_rate", 0, None, False, True), ("blocks", 0, None, True, True), ("factor", 0, None, False, True),
    ("epochs", 1, None, True, True), ("batch_size", 1, None, True, True), ("max_seq_len", 3, None, True, True),
    ("seed", 0, 2 ** 32 - 1, True, True), ("warmup", 0, 1, True, True), ("start_point", 0, 1, True, True),
    ("frz_blocks", 0, None, True, True), ("cut_fraction", 0, 1, True, False), ("ratio", 1, None, True, True),
    ("weight_decay", 0, None, True, True), ("clip", 0, None, True, True), ("grad_accum", 1, None, True, True),
    ("eval_interval", 0, None, True, True), ("eval_batch_size", 1, None, True, True),
    ("max_train_examples", 0, None, True, True), ("log_interval", 1, None, True, True),
    ("save_interval", 0, None, True, True),
]


def _range_text(lo, hi, lo_in, hi_in) -> str:
    if hi is None:
        return f"{'>=' if lo_in else '>'} {lo}"
    return f"{lo} {'<=' if lo_in else '<'} value {'<=' if hi_in else '<'} {hi}"


def validate(cfg: TrainConfig) -> None:
    """Every numeric flag within its range; AutoftError naming flag, value and range."""
    for name, lo, hi, lo_in, hi_in in _RANGES:
        v = getattr(cfg, name)
        ok = isinstance(v, (int, float)) and math.isfinite(v)
        ok = ok and (v >= lo if lo_in else v > lo) and (hi is None or (v <= hi if hi_in else v < hi))
        if not ok:
            raise AutoftError(f"--{name}: expected {_range_text(lo, hi, lo_in, hi_in)}, found {v}")
    if cfg.uses_demo_model():
        check_seq_len(cfg.max_seq_len, DEMO_MODEL["max_position_embeddings"], "the demo model")


def check_seq_len(max_seq_len: int, positions: int, what: str) -> None:
    """--max_seq_len must fit the model's position embeddings."""
    if max_seq_len > positions:
        raise AutoftError(f"--max_seq_len {max_seq_len}: expected 3 .. {positions}; {what} has only "
                          f"{positions} positions (max_position_embeddings)")
