"""An estimate of one training trial's peak GPU memory, from the model's real layer structure.

No Paddle import: the tuner checks ``--trials_per_gpu`` against each card before the first trial.

What a training step holds at its peak (the start of the backward pass, when every activation
the backward needs is still alive), for the native path that runs on a GPU:

* state: fp32 weights (under ``--amp`` these are the masters), their fp32 gradients, AdamW's
  two fp32 moments; under AMP O1 also the 16-bit copy of every matmul weight, which the matmul
  keeps for its backward;
* activations, per tensor the backward reads (``_layer_bytes``): each layer's input, Q|K|V,
  the attention probabilities, the context, the LayerNorm inputs, GELU's input and output, the
  dropout masks (1 byte an element), LayerNorm statistics; the classifier's last layer runs
  for [CLS] only (its queries and everything after attention are one row per example);
* the backward's own temporaries for one layer (score and FFN gradients);
* 5% allocator fragmentation (Paddle's ``auto_growth`` allocator) and 0.75 GiB for the CUDA
  context and the cuBLAS / cuDNN workspaces, per process (so K trials on one GPU pay it K times).

Attention is counted as the explicit matmul-softmax-matmul path (fp32, and fp16 without flash),
the larger of the two: flash (fp16 / bf16 on sm80+) keeps no S x S scores, so AMP on an A100 /
H100 needs less than estimated. What this reproduces and what only a GPU confirms:
docs/model.md, "GPU memory".
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model module imports Paddle; this one must not
    from autoft.model import BertConfig

GIB = 1024**3
CUDA_CONTEXT_BYTES = int(0.75 * GIB)
FRAGMENTATION = 0.05
AMP_DTYPES = ("fp16", "bf16", "float16", "bfloat16")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per part of a trial's peak; ``total`` is what ``estimate_peak_bytes`` returns."""

    weights: int
    grads: int
    adamw_moments: int
    amp_weight_copies: int
    activations: int
    backward_temporaries: int
    fragmentation: int
    cuda_context: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def _parameters(config, num_labels: int) -> tuple:
    """(all parameters, those read by a matmul) of a BertForSequenceClassification."""
    h, i, n_layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    layer_matmul = h * 3 * h + h * h + h * i + i * h
    layer = layer_matmul + 3 * h + h + i + h + 4 * h  # + biases and two LayerNorms
    head_matmul = h * h + h * num_labels
    total = embeddings + n_layers * layer + head_matmul + h + num_labels
    return total, n_layers * layer_matmul + head_matmul


def _layer_bytes(config, batch: int, seq: int, queries: int, amp: bool) -> int:
    """Saved activations of one transformer layer; ``queries`` = seq, or 1 for the [CLS]-only layer.

    fp32: everything 4 bytes. AMP O1: matmul outputs (and GELU, which follows its input) are 2
    bytes, LayerNorm and softmax run in fp32 (Paddle's black list), and a matmul reading an
    fp32 tensor keeps a 2-byte copy of it.
    """
    h, i, heads = config.hidden_size, config.intermediate_size, config.num_attention_heads
    half = 2 if amp else 4  # bytes of a matmul input/output
    tokens, rows = batch * seq, batch * queries  # rows: what the layer computes after attention
    # softmax output (fp32) + dropout mask (1) + dropped probabilities (fp32, or their 2-byte copy)
    score = 4 + 1 + half
    saved = [
        tokens * h * half,  # layer input, read by the Q|K|V matmul
        3 * tokens * h * half,  # Q, K, V
        heads * batch * queries * seq * score,  # attention probabilities
        rows * h * half,  # context, read by the output matmul
        rows * h * 1,  # attention-output dropout mask
        rows * h * 4,  # LayerNorm 1 input (residual sum)
        rows * h * half,  # LayerNorm 1 output, read by the FFN-in matmul
        2 * rows * i * half,  # GELU input and output
        rows * h * 1,  # FFN dropout mask
        rows * h * 4,  # LayerNorm 2 input
        2 * rows * 2 * 4,  # LayerNorm mean and variance, two norms
    ]
    return sum(saved)


def _activation_bytes(config, batch: int, seq: int, amp: bool) -> int:
    h = config.hidden_size
    tokens = batch * seq
    embeddings = tokens * h * 4 + tokens * h * 1 + tokens * 2 * 4  # LayerNorm input, dropout mask, stats
    full = (config.num_hidden_layers - 1) * _layer_bytes(config, batch, seq, seq, amp)
    cls_only = _layer_bytes(config, batch, seq, 1, amp) if config.num_hidden_layers else 0
    head = 4 * batch * h * 4  # pooler input/output, head dropout, logits
    return embeddings + full + cls_only + head


def _backward_temporaries(config, batch: int, seq: int, amp: bool) -> int:
    """Gradients alive at once inside one full layer's backward: two score-sized, two FFN-sized."""
    scores = config.num_attention_heads * batch * seq * seq
    ffn = batch * seq * config.intermediate_size
    return 2 * scores * 4 + 2 * ffn * (2 if amp else 4)


def estimate(config: BertConfig, batch_size: int, max_seq_len: int, amp: str = "", num_labels: int = 2) -> MemoryEstimate:
    """The parts of a trial's peak GPU memory (see the module docstring); ``amp``: "", "none", "fp16", "bf16"."""
    use_amp = str(amp).lower() in AMP_DTYPES
    params, matmul_params = _parameters(config, num_labels)
    parts = dict(
        weights=4 * params,
        grads=4 * params,
        adamw_moments=8 * params,
        amp_weight_copies=2 * matmul_params if use_amp else 0,
        activations=_activation_bytes(config, batch_size, max_seq_len, use_amp),
        backward_temporaries=_backward_temporaries(config, batch_size, max_seq_len, use_amp),
    )
    fragmentation = int(FRAGMENTATION * sum(parts.values()))
    return MemoryEstimate(**parts, fragmentation=fragmentation, cuda_context=CUDA_CONTEXT_BYTES)


def estimate_peak_bytes(config: BertConfig, batch_size: int, max_seq_len: int, amp: str = "",
                        num_labels: int = 2) -> int:
    """Estimated peak GPU memory (bytes) of one trial: ``config`` a BertConfig, AdamW, ``amp`` ""
    (fp32) / "fp16" / "bf16" (AMP O1), the classifier with ``num_labels`` outputs.

    RoBERTa-wwm-ext-large in fp32: XNLI 32x128 ~14.0 GiB, INEWS 4x512 ~12.6 GiB, TNEWS/LCQMC
    16x128 ~9.9 GiB. K trials on one GPU need K times this.
    """
    return estimate(config, batch_size, max_seq_len, amp, num_labels).total


def format_gib(n: int) -> str:
    """Bytes as GiB with one decimal: 15032385536 -> "14.0 GiB"."""
    return f"{n / GIB:.1f} GiB"


def safe_trials_per_gpu(peak_bytes: int, card_bytes: int) -> int:
    """How many trials of ``peak_bytes`` fit on a card of ``card_bytes`` (0: not even one)."""
    return int(card_bytes // peak_bytes) if peak_bytes > 0 else 0
