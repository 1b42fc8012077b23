"""The peak-memory estimate: the issue's figures, the model's parameter count, how it scales."""

import dataclasses

import pytest

from autoft import memory
from autoft.memory import GIB, estimate, estimate_peak_bytes, format_gib, safe_trials_per_gpu
from autoft.model import BertConfig

LARGE = BertConfig.preset("roberta-wwm-ext-large")


@pytest.mark.parametrize("task,batch,seq,labels,quoted", [
    ("xnli", 32, 128, 3, 14.0),
    ("inews", 4, 512, 3, 12.6),
    ("tnews", 16, 128, 15, 9.9),
    ("lcqmc", 16, 128, 2, 9.9),
])
def test_large_model_fp32_matches_the_quoted_estimates(task, batch, seq, labels, quoted):
    got = estimate_peak_bytes(LARGE, batch, seq, num_labels=labels) / GIB
    assert abs(got - quoted) <= 0.15, f"{task}: {got:.2f} GiB, quoted {quoted}"


def test_parameter_count_is_the_models():
    from autoft.model import BertForSequenceClassification

    assert memory._parameters(LARGE, 2)[0] == 325_524_482  # docs/model.md
    small = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                       intermediate_size=24, max_position_embeddings=20)
    model = BertForSequenceClassification(small, ["a", "b", "c"])
    assert memory._parameters(small, 3)[0] == model.num_parameters()
    e = estimate(small, 2, 8, num_labels=3)
    assert e.weights == e.grads == 4 * model.num_parameters() and e.adamw_moments == 8 * model.num_parameters()


def test_state_is_16_bytes_a_parameter_in_fp32_and_adds_16_bit_matmul_weights_under_amp():
    fp32, amp = estimate(LARGE, 16, 128), estimate(LARGE, 16, 128, amp="fp16")
    assert fp32.amp_weight_copies == 0
    n_matmul = memory._parameters(LARGE, 2)[1]
    assert amp.amp_weight_copies == 2 * n_matmul and 24 * 1024 * 4096 * 3 < n_matmul < 325_524_482
    assert amp.activations < fp32.activations and amp.total < fp32.total
    assert estimate(LARGE, 16, 128, amp="bf16") == amp
    assert estimate(LARGE, 16, 128, amp="none") == fp32


def test_activations_are_linear_in_the_batch_and_quadratic_terms_grow_with_length():
    one, two = (estimate(LARGE, b, 128) for b in (1, 2))
    assert two.activations == 2 * one.activations
    # Same tokens per batch, four times the length: the S x S attention scores dominate the change.
    short, long = estimate(LARGE, 16, 128), estimate(LARGE, 4, 512)
    heads, layers = LARGE.num_attention_heads, LARGE.num_hidden_layers
    scores = (layers - 1) * heads * (4 * 512 * 512 - 16 * 128 * 128) * (4 + 1 + 4)
    assert abs((long.activations - short.activations) - scores) < 0.02 * scores


def test_the_cls_only_last_layer_is_counted_as_one_row_per_example():
    cfg = dataclasses.replace(LARGE, num_hidden_layers=1)
    full = memory._layer_bytes(cfg, 8, 128, 128, amp=False)
    cls = memory._layer_bytes(cfg, 8, 128, 1, amp=False)
    # What remains is the layer input and Q|K|V over every token (4 x tokens x H x 4 bytes).
    assert 4 * 8 * 128 * 1024 * 4 < cls < 0.2 * full


def test_format_and_trials_per_card():
    assert format_gib(int(14.04 * GIB)) == "14.0 GiB" and format_gib(0) == "0.0 GiB"
    peak = estimate_peak_bytes(LARGE, 32, 128, num_labels=3)  # XNLI fp32
    assert [safe_trials_per_gpu(peak, mib * 2**20) for mib in (15360, 23028, 40536, 81559)] == [1, 1, 2, 5]
    assert safe_trials_per_gpu(peak, 8 * GIB) == 0


def test_the_estimate_imports_no_paddle():
    # The tuner checks memory before any trial, in a process that never imports Paddle.
    import subprocess
    import sys

    code = "import sys, autoft.memory; sys.exit('paddle' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
