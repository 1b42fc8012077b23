"""``autoft doctor``: a self-check to run on your own box and paste into a bug report.

One PASS / FAIL / SKIP / INFO line per check, and the same as JSON (``--output``, default
./autoft-doctor.json). It reports the Paddle flavour and version, CUDA / cuDNN, the GPUs and
their memory, which compute path and attention kernel each task's shape takes, then runs a
training step (forward + backward + AdamW) at the four tasks' shapes in fp32 and, on a GPU,
under ``--amp``, with steps/s and (GPU) the peak memory beside autoft.memory's estimate; the
native path against the CPU path on the same input; flash against the explicit attention on
a GPU that has flash. The model is RoBERTa-wwm-ext-large's shape (random weights, nothing is
downloaded) with all 24 layers on a GPU whose memory holds them, fewer otherwise and on a CPU
(2 layers and at most 4 rows a batch by default, ``--layers``, ``--batch``). On a box without a CUDA GPU the GPU checks are SKIP lines, named
in the summary. Exit status 1 when any check FAILs.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from typing import Optional, Sequence

from autoft import atomic, memory
from autoft.errors import ArgumentParser
from autoft.finetune import gpu_requested, installed_paddle

# The seed's shapes per task: (batch size, max_seq_len, number of labels).
TASK_SHAPES = {"tnews": (16, 128, 15), "lcqmc": (16, 128, 2), "xnli": (32, 128, 3), "inews": (4, 512, 3)}
CPU_LAYERS = 2  # on CPU also CPU_BATCH rows: the kernels depend on lengths, and 5 minutes is the budget
CPU_BATCH = 4
PATH_TOLERANCE = 1e-5
FLASH_TOLERANCE = 2e-3  # fp16 flash vs fp16 explicit attention, on values of order 1
MEMORY_SLACK = 1.15  # a measured peak up to 15% above the estimate still passes


@dataclasses.dataclass
class Check:
    name: str
    status: str  # PASS, FAIL, SKIP or INFO
    detail: str
    data: dict = dataclasses.field(default_factory=dict)


class Report:
    """Collects checks and prints each as it comes."""

    def __init__(self):
        self.checks: list[Check] = []

    def add(self, name: str, status: str, detail: str, **data) -> Check:
        check = Check(name, status, detail, data)
        self.checks.append(check)
        print(f"{status:<4}  {name:<22} {detail}", flush=True)
        return check

    def counts(self) -> dict:
        return {s: sum(c.status == s for c in self.checks) for s in ("PASS", "FAIL", "SKIP", "INFO")}


# ------------------------------------------------------------------ environment


def check_paddle(report: Report, paddle) -> None:
    cuda = paddle.version.cuda() if paddle.is_compiled_with_cuda() else None
    cudnn = paddle.version.cudnn() if cuda else None
    build = f"CUDA {cuda}, cuDNN {cudnn}" if cuda else "CPU build (no CUDA)"
    report.add("paddle", "INFO", f"Paddle {paddle.__version__} ({installed_paddle()}); {build}; "
               f"Python {platform.python_version()}, {platform.system()} {platform.machine()}",
               version=paddle.__version__, flavour=installed_paddle(), cuda=cuda, cudnn=cudnn)


def list_gpus(paddle) -> list:
    """[{id, name, capability, memory_bytes}] of the CUDA GPUs Paddle sees."""
    if not paddle.is_compiled_with_cuda():
        return []
    gpus = []
    for i in range(paddle.device.cuda.device_count()):
        props = paddle.device.cuda.get_device_properties(i)
        gpus.append(dict(id=i, name=props.name, capability=[props.major, props.minor],
                         memory_bytes=int(props.total_memory)))
    return gpus


def check_gpus(report: Report, paddle, gpus: list) -> None:
    visible = gpu_requested()
    if gpus:
        for g in gpus:
            report.add(f"gpu {g['id']}", "PASS", f"{g['name']}, sm{g['capability'][0]}{g['capability'][1]}, "
                       f"{memory.format_gib(g['memory_bytes'])}", **g)
    elif visible is not None:
        report.add("gpus", "FAIL", f"CUDA_VISIBLE_DEVICES={visible} names a GPU, but this Paddle sees none "
                   f"({installed_paddle()}{'' if paddle.is_compiled_with_cuda() else ', a CPU build'}): training "
                   "would run on CPU; install paddlepaddle-gpu (PyPI 2.6.2, or 3.x from Paddle's own index)")
    else:
        report.add("gpus", "SKIP", "no CUDA GPU (CPU build or no device): GPU checks skipped")


def check_kernels(report: Report, paddle, gpus: list) -> None:
    """Which compute path and attention kernel each task's shape takes on this box."""
    from autoft import model as M

    sm = tuple(gpus[0]["capability"]) if gpus else None
    path = M.NATIVE_PATH if gpus else M.CPU_PATH
    head_dim = 64  # every preset: 1024 / 16, 768 / 12
    for task, (batch, seq, _) in TASK_SHAPES.items():
        if path is M.CPU_PATH:
            kernels = {"float32": "split-head matmul-softmax-matmul (CPU path)"}
        else:
            kernels = {dt: M.attention_kernel(getattr(paddle, dt), sm, head_dim)
                       for dt in ("float32", "float16", "bfloat16")}
        text = ", ".join(f"{dt} {k}" for dt, k in kernels.items())
        report.add(f"kernels {task}", "INFO", f"{batch}x{seq}: {path.name} path; attention {text}",
                   path=path.name, kernels=kernels, batch=batch, seq=seq)


def check_estimates(report: Report, gpus: list) -> None:
    from autoft.model import BertConfig

    large = BertConfig.preset("roberta-wwm-ext-large")
    smallest = min((g["memory_bytes"] for g in gpus), default=None)
    for task, (batch, seq, labels) in TASK_SHAPES.items():
        est = {amp or "fp32": memory.estimate_peak_bytes(large, batch, seq, amp, labels) for amp in ("", "fp16")}
        text = ", ".join(f"{k} {memory.format_gib(v)}" for k, v in est.items())
        if smallest is None:
            report.add(f"memory {task}", "INFO", f"large model estimate {text}; card check skipped (no GPU)",
                       estimate_bytes=est)
            continue
        k = memory.safe_trials_per_gpu(est["fp32"], smallest)
        status = "PASS" if k >= 1 else "FAIL"
        report.add(f"memory {task}", status, f"large model estimate {text}; fp32 trials per GPU that fit: {k}",
                   estimate_bytes=est, trials_per_gpu=k)


# ------------------------------------------------------------------ running the model


def _batch(paddle, batch: int, seq: int, vocab: int, labels: int, seed: int) -> dict:
    """Random token ids; row 1 padded over its last quarter (the mask a real batch has)."""
    import numpy as np

    rng = np.random.RandomState(seed)
    ids = rng.randint(1000, vocab, (batch, seq)).astype("int64")
    mask = np.ones_like(ids)
    if batch > 1:
        mask[1, seq - seq // 4:] = 0
        ids[mask == 0] = 0
    return dict(input_ids=paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask),
                labels=paddle.to_tensor(rng.randint(0, labels, batch).astype("int64")))


def _train_steps(paddle, model, data: dict, amp: str, steps: int, on_gpu: bool) -> tuple:
    """(last loss, all gradients finite, seconds per step) over ``steps`` timed steps after one warm-up."""
    opt = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=model.parameters(), weight_decay=0.01)
    scaler = paddle.amp.GradScaler(init_loss_scaling=2.0**15) if amp == "fp16" else None
    dtype = "float16" if amp == "fp16" else "bfloat16"
    finite, seconds = True, []
    for step in range(steps + 1):
        start = time.perf_counter()
        with paddle.amp.auto_cast(enable=bool(amp), dtype=dtype):
            logits = model(data["input_ids"], attention_mask=data["attention_mask"])
        loss = paddle.nn.functional.cross_entropy(logits.astype("float32"), data["labels"])
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        if step == 0:
            finite = all(bool(paddle.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.clear_grad()
        if on_gpu:
            paddle.device.cuda.synchronize()
        if step:
            seconds.append(time.perf_counter() - start)
    return float(loss), finite, sum(seconds) / len(seconds)


def _reset_peak(paddle) -> bool:
    """Start a fresh peak count; False on a Paddle that cannot (then no peak is reported)."""
    reset = getattr(paddle.device.cuda, "reset_max_memory_allocated", None)
    if reset is None or not hasattr(paddle.device.cuda, "max_memory_allocated"):
        return False
    reset()
    return True


def check_training(report: Report, paddle, args, gpus: list) -> None:
    from autoft.model import BertConfig, BertForSequenceClassification, BertModel

    on_gpu = bool(gpus)
    layers = args.layers or (_layers_that_fit(gpus) if on_gpu else CPU_LAYERS)
    config = BertConfig.preset("roberta-wwm-ext-large", num_hidden_layers=layers)
    report.add("model", "INFO", f"RoBERTa-wwm-ext-large shape with {layers} of 24 layers, random weights",
               layers=layers)
    paddle.seed(0)
    encoder = BertModel(config)
    for task, (batch, seq, labels) in TASK_SHAPES.items():
        batch = args.batch or (batch if on_gpu else min(batch, CPU_BATCH))
        model = BertForSequenceClassification(config, [str(i) for i in range(labels)], bert=encoder)
        model.train()
        data = _batch(paddle, batch, seq, config.vocab_size, labels, seed=len(task))
        for amp in ("", "fp16", "bf16"):
            name = f"train {task} {amp or 'fp32'}"
            if amp and not on_gpu:
                report.add(name, "SKIP", "--amp needs a GPU")
                continue
            if amp == "bf16" and tuple(gpus[0]["capability"]) < (8, 0):
                report.add(name, "SKIP", "bf16 needs sm80+")
                continue
            _train_one(report, paddle, name, model, data, amp, args.steps, on_gpu, (config, batch, seq, labels))


def _train_one(report, paddle, name, model, data, amp, steps, on_gpu, shape) -> None:
    config, batch, seq, labels = shape
    measure_peak = on_gpu and _reset_peak(paddle)
    try:
        loss, finite, seconds = _train_steps(paddle, model, data, amp, steps, on_gpu)
    except Exception as exc:  # what the user pastes: the error, not a traceback
        report.add(name, "FAIL", f"{batch}x{seq}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return
    ok = finite and math.isfinite(loss)
    detail = f"{batch}x{seq}: loss {loss:.3f}, gradients {'finite' if finite else 'NOT finite'}, {1 / seconds:.2f} steps/s"
    data = dict(batch=batch, seq=seq, loss=loss, steps_per_s=1 / seconds, path=model.bert.path.name)
    if measure_peak:
        peak = int(paddle.device.cuda.max_memory_allocated())
        est = memory.estimate(config, batch, seq, amp, labels)
        allocator_view = est.total - est.cuda_context  # the allocator does not see the CUDA context
        ok = ok and peak <= MEMORY_SLACK * allocator_view
        detail += f"; peak {memory.format_gib(peak)} vs estimate {memory.format_gib(allocator_view)} (without context)"
        data.update(peak_bytes=peak, estimate_bytes=allocator_view)
    else:
        detail += "; peak memory: GPU only" if not on_gpu else "; peak memory: not measurable on this Paddle"
    report.add(name, "PASS" if ok else "FAIL", detail, **data)


def _layers_that_fit(gpus: list) -> int:
    """All 24 layers when the largest fp32 task fits the smallest GPU, else as many as fit."""
    from autoft.model import BertConfig

    card = min(g["memory_bytes"] for g in gpus)
    for layers in range(24, 0, -1):
        config = BertConfig.preset("roberta-wwm-ext-large", num_hidden_layers=layers)
        if all(memory.estimate_peak_bytes(config, b, s, "", n) <= card for b, s, n in TASK_SHAPES.values()):
            return layers
    return 1


def check_paths_agree(report: Report, paddle) -> None:
    """Native path vs CPU path on the same input: outputs and every gradient (eval, no dropout)."""
    import numpy as np

    from autoft.model import BertConfig, BertForSequenceClassification

    flags = {"FLAGS_allow_tf32_cublas": False}  # TF32 GEMMs would differ at 1e-3, not a path error
    try:
        saved = paddle.get_flags(list(flags))
        paddle.set_flags(flags)
    except Exception:  # a Paddle without this flag (CPU builds): nothing to switch
        saved = None
    paddle.seed(1)
    config = BertConfig.preset("roberta-wwm-ext-large", num_hidden_layers=2)
    model = BertForSequenceClassification(config, ["a", "b", "c"])
    model.eval()
    data = _batch(paddle, 2, 40, config.vocab_size, 3, seed=7)
    results = {}
    for path in ("cpu", "native"):
        model.use_path(path).clear_gradients()
        logits = model(data["input_ids"], attention_mask=data["attention_mask"])
        (logits**2).mean().backward()
        results[path] = [logits.numpy()] + [p.grad.numpy() for p in model.parameters()]
    if saved is not None:
        paddle.set_flags(saved)
    worst = max(float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max()))
                for a, b in zip(results["cpu"], results["native"]))
    status = "PASS" if worst <= PATH_TOLERANCE else "FAIL"
    report.add("paths agree", status, f"CPU path vs native path, logits and {len(results['cpu']) - 1} gradients: "
               f"max relative difference {worst:.1e} (limit {PATH_TOLERANCE:g})", max_relative_difference=worst)


def check_flash(report: Report, paddle, gpus: list) -> None:
    """On a GPU with flash: SDPA's flash kernel vs the explicit path, with the model's mask."""
    from autoft import model as M

    sm = tuple(gpus[0]["capability"]) if gpus else None
    if M.attention_kernel(paddle.float16, sm, 64) != "flash":
        why = "no CUDA GPU" if sm is None else f"this box takes the explicit path in fp16 (sm{sm[0]}{sm[1]}, Paddle {paddle.__version__})"
        report.add("flash attention", "SKIP", why)
        return
    paddle.seed(2)
    b, s, heads, d = 4, 128, 16, 64
    q, k, v = (paddle.randn([b, s, heads, d]).astype("float16") for _ in range(3))
    attention_mask = paddle.ones([b, s], dtype="int64")
    attention_mask[1, 100:] = 0
    mask = M.additive_mask(attention_mask, "float16")
    worst = 0.0
    for queries in (q, q[:, :1]):  # a full layer and the [CLS]-only one
        flash = paddle.nn.functional.scaled_dot_product_attention(queries, k, v, attn_mask=mask, training=False)
        explicit = M.explicit_attention(queries, k, v, mask, 0.0, False)
        worst = max(worst, float((flash.astype("float32") - explicit.astype("float32")).abs().max()))
    status = "PASS" if worst <= FLASH_TOLERANCE else "FAIL"
    report.add("flash attention", status, f"fp16 flash vs explicit with a padded [B,1,1,S] mask: max difference "
               f"{worst:.1e} (limit {FLASH_TOLERANCE:g})", max_difference=worst)


# ------------------------------------------------------------------ command line


def run(args) -> Report:
    from autoft.runtime import import_paddle

    paddle = import_paddle()
    report = Report()
    check_paddle(report, paddle)
    gpus = list_gpus(paddle)
    paddle.set_device("gpu" if gpus else "cpu")
    check_gpus(report, paddle, gpus)
    check_kernels(report, paddle, gpus)
    check_estimates(report, gpus)
    check_paths_agree(report, paddle)
    check_flash(report, paddle, gpus)
    check_training(report, paddle, args, gpus)
    return report


def _short(names: list) -> str:
    """Skipped check names, the per-task train steps counted: "gpus, flash attention, 8 --amp train steps"."""
    steps = [n for n in names if n.startswith("train ")]
    rest = [n for n in names if not n.startswith("train ")]
    return ", ".join(rest + ([f"{len(steps)} --amp train steps"] if steps else []))


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """``autoft doctor [--output FILE] [--layers N] [--batch N] [--steps N]``."""
    parser = ArgumentParser(prog="autoft doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="autoft-doctor.json", help="where the JSON report is written")
    parser.add_argument("--layers", type=int, default=0,
                        help=f"encoder layers of the test model (0: 24 on a GPU that holds them, "
                             f"{CPU_LAYERS} on CPU)")
    parser.add_argument("--batch", type=int, default=0,
                        help=f"rows per batch (0: each task's batch size; at most {CPU_BATCH} on CPU)")
    parser.add_argument("--steps", type=int, default=2, help="timed train steps per shape after one warm-up")
    args = parser.parse_args(list(argv or []))
    for flag in ("layers", "batch"):
        if getattr(args, flag) < 0:
            parser.error(f"--{flag} must be >= 0, found {getattr(args, flag)}")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, found {args.steps}")
    started = time.time()
    report = run(args)
    counts = report.counts()
    skipped = [c.name for c in report.checks if c.status == "SKIP"]
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
          + (f" ({_short(skipped)})" if skipped else "") + f" in {time.time() - started:.0f} s")
    from autoft import __version__

    atomic.write_json(args.output, dict(
        autoft=__version__, python=sys.version.split()[0], seconds=round(time.time() - started, 1),
        counts=counts, skipped=skipped, checks=[dataclasses.asdict(c) for c in report.checks]))
    print(f"wrote {args.output}")
    return 1 if counts["FAIL"] else 0
