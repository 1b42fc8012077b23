"""Every attention call of the model goes to a kernel that accepts it, on a GPU as Paddle decides.

No GPU Paddle runs here, so the test runs the model's real forward on CPU with the device
checks of Paddle's own SDPA kernel selector (its Python code in paddle/nn/functional/
flash_attention.py and sdpa.py) patched to report a CUDA GPU of compute capability 7.0, 8.0 or
9.0, and the kernels themselves replaced by recorders that check each call against that
kernel's real input contract (from Paddle's C++ checks) before returning zeros:

* flash_attn: fp16 / bf16 (bf16 from sm80), sm 8.x / 9.0, head dim a multiple of 8 up to 256,
  mask [B, 1|heads, 1|S_q, S_k] in the query's dtype;
* memory_efficient_attention (3.3): bias rank 2 or 4 with dims -2 / -1 = S_q / S_k, batch and
  head dims (B, heads) or (1, 1);
* variable_length_memory_efficient_attention (3.0-3.2): reads the mask as [B, 1, S_q, S_k],
  uses the query length as key length, and applies no dropout;
* the math fallback and the model's explicit path accept everything.

fp16 / bf16 calls are what AMP O1 hands the attention (Q|K|V from a half-precision matmul, the
fp32 mask cast by the model): the Q|K|V projection is cast at the attention's entry, since CPU
Paddle has no half-precision kernels. What only a GPU run can confirm: docs/model.md.
"""

import functools
import importlib

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from autoft import model as M

SM = {"sm70": (7, 0), "sm80": (8, 0), "sm90": (9, 0)}
DTYPES = ("float32", "float16", "bfloat16")
LENGTHS = (37, 40, 128, 512)
HALF = (paddle.float16, paddle.bfloat16)


def _module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


SDPA_33 = _module("paddle.nn.functional.sdpa")  # Paddle >= 3.3's selector
BACKENDS_33 = _module("paddle.nn.attention.sdpa")  # and its list of enabled backends
FLASH_MOD = importlib.import_module("paddle.nn.functional.flash_attention")
MEM_EFF = _module("paddle.incubate.nn.memory_efficient_attention")
VARLEN = _module("paddle.incubate.nn.functional.variable_length_memory_efficient_attention")


class Recorder:
    """One entry per attention call: where it went and whether that kernel accepts it."""

    def __init__(self, sm):
        self.sm = sm
        self.calls = []

    def sdpa_entry(self, q, k, mask, p, training):
        self.calls.append(dict(q=list(q.shape), k=list(k.shape), mask=list(mask.shape), p=p,
                               training=training, kernels=[], problems=[]))

    def kernel(self, name, problems):
        """A kernel reached from the SDPA call recorded last."""
        self.calls[-1]["kernels"].append(name)
        self.calls[-1]["problems"] += problems

    def explicit(self, q, k, mask, p, training):
        self.sdpa_entry(q, k, mask, p, training)
        self.kernel("explicit", [])


def flash_problems(q, k, mask, sm):
    b, sq, h, d = q.shape
    out = []
    if q.dtype not in HALF or (q.dtype == paddle.bfloat16 and sm < (8, 0)):
        out.append(f"dtype {q.dtype}")
    if sm[0] not in (8, 9):
        out.append(f"sm {sm}")
    if d % 8 or d > 256:
        out.append(f"head dim {d}")
    if mask is not None:
        m = list(mask.shape)
        if len(m) != 4 or m[0] != b or m[1] not in (1, h) or m[2] not in (1, sq) or m[3] != k.shape[1]:
            out.append(f"mask {m} for q {list(q.shape)}, k {list(k.shape)}")
        elif mask.dtype != q.dtype:
            out.append(f"mask dtype {mask.dtype} != {q.dtype}")
    return out


def mem_efficient_problems(q, k, bias):
    b, sq, h, _ = q.shape
    if bias is None:
        return []
    m = list(bias.shape)
    if len(m) not in (2, 4) or m[-1] != k.shape[1] or m[-2] != sq:
        return [f"bias {m}: dims -2/-1 must be S_q {sq} / S_k {k.shape[1]}"]
    if len(m) == 4 and (m[0], m[1]) not in ((b, h), (1, 1)):
        return [f"bias {m}: batch/head dims must be ({b}, {h}) or (1, 1)"]
    return []


@pytest.fixture
def on_gpu():
    """pretend(sm, dtype) -> a Recorder, with device checks and kernels patched (each call
    starts from Paddle's originals) until the test ends."""
    cached = [f for m in (SDPA_33, FLASH_MOD) if m for f in vars(m).values() if hasattr(f, "cache_clear")]
    mp = pytest.MonkeyPatch()

    def reset():
        mp.undo()
        for f in cached:  # Paddle caches device facts (lru_cache) per device id
            f.cache_clear()

    def pretend(sm, dtype):
        reset()
        rec = Recorder(sm)
        mp.setattr(M, "gpu_capability", lambda place: sm)
        for owner in (paddle, paddle.device):
            mp.setattr(owner, "get_device", lambda: "gpu:0")
        mp.setattr(paddle.version, "cuda", lambda: "12.0")
        if hasattr(FLASH_MOD, "get_device_capability"):  # 3.0 - 3.2
            mp.setattr(FLASH_MOD, "get_device_capability", lambda *a: sm)
        if SDPA_33 is not None:  # 3.3
            mp.setattr(SDPA_33, "get_device_capability", lambda device_id: sm)
            mp.setattr(SDPA_33, "check_cuda_is_available", lambda: True)
            mp.setattr(SDPA_33, "check_all_tensors_on_device", lambda params: True)
            mp.setattr(paddle.device, "get_all_device_type", lambda: ["gpu"])
            mp.setattr(SDPA_33, "_config", {})
            mp.setattr(paddle.device, "is_bf16_supported", lambda *a, **k: sm >= (8, 0))
            # What a CUDA build with flash and memory-efficient attention enables.
            mp.setattr(BACKENDS_33, "_backend_enabled", {b: True for b in BACKENDS_33._backend_enabled})
        _patch_kernels(mp, rec, dtype)
        return rec

    yield pretend
    reset()


def _zeros(q):
    return paddle.zeros([q.shape[0], q.shape[1], q.shape[2], q.shape[3]], dtype=q.dtype)


def _patch_kernels(mp, rec, dtype):
    sdpa = F.scaled_dot_product_attention

    def recorded_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, training=True, **kw):
        rec.sdpa_entry(q, k, attn_mask, dropout_p, training)
        return sdpa(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, training=training, **kw)

    def flash_attn(q, k, v, seed_offset, mask, *rest):
        rec.kernel("flash_attn", flash_problems(q, k, mask, rec.sm))
        return _zeros(q), None, None, None

    def mem_efficient(query, key, value, attn_bias=None, p=0.0, scale=None, training=True):
        rec.kernel("mem_efficient", mem_efficient_problems(query, key, attn_bias))
        return _zeros(query)

    def varlen(query, key, value, seq_lens, kv_seq_lens, mask=None, scale=None, *rest, **kw):
        b, h, sq, _ = query.shape  # [B, heads, S, D] here
        call = rec.calls[-1]
        problems = []
        if mask is not None and list(mask.shape) != [b, 1, sq, key.shape[2]]:
            problems.append(f"reads mask {list(mask.shape)} as [B, 1, S_q, S_k] = {[b, 1, sq, key.shape[2]]}")
        if key.shape[2] != sq:
            problems.append(f"key length {key.shape[2]} cut to the query length {sq}")
        if call["training"] and call["p"] > 0:
            problems.append(f"dropout {call['p']} not applied")
        rec.kernel("variable_length_mem_efficient", problems)
        return paddle.zeros(query.shape, dtype=query.dtype)

    def math(query, *rest, **kw):
        rec.kernel("math", [])
        return _zeros(query), None

    def explicit(q, k, v, mask, p, training):
        rec.explicit(q, k, mask, p, training)
        return _zeros(q)

    mp.setattr(F, "scaled_dot_product_attention", recorded_sdpa)
    mp.setattr(paddle._C_ops, "flash_attn", flash_attn)
    for mod, name, fake in ((MEM_EFF, "memory_efficient_attention", mem_efficient),
                            (VARLEN, "variable_length_memory_efficient_attention", varlen),
                            (SDPA_33, "_math_attention", math), (FLASH_MOD, "_math_attention", math)):
        if mod is not None and hasattr(mod, name):
            mp.setattr(mod, name, fake)
    mp.setattr(M, "explicit_attention", explicit)
    if dtype != "float32":  # AMP O1: Q|K|V come out of a half-precision matmul
        attention = M.NativePath.attention

        def amp_attention(self, qkv, mask, *args):
            return attention(self, qkv.astype(dtype), mask, *args).astype("float32")

        mp.setattr(M.NativePath, "attention", amp_attention)


@functools.cache
def _classifier():
    # Head dim 64 like every preset (hidden 1024 / 16 heads, 768 / 12); 2 layers: a full one
    # and the [CLS]-only last layer the classifier runs.
    paddle.seed(0)
    config = M.BertConfig(vocab_size=50, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=512)
    return M.BertForSequenceClassification(config, ["a", "b"]).use_path("native")


def _forward(length, training):
    """The classifier's call on a padded batch: row 0 fills ``length``, row 1 half of it."""
    m = _classifier()
    m.train() if training else m.eval()
    ids = np.random.RandomState(length).randint(1, 50, (2, length)).astype("int64")
    mask = np.ones_like(ids)
    mask[1, length // 2:] = 0
    ids[mask == 0] = 0
    m(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(mask))


def _run_matrix(pretend, sm, dtype):
    rows = []
    for length in LENGTHS:
        for training in (True, False):
            rec = pretend(sm, dtype)
            _forward(length, training)
            rows += [(length, training, c) for c in rec.calls]
    return rows


def _expected_kernel(sm, dtype):
    if M.USE_SDPA and dtype != "float32" and sm[0] in (8, 9):
        return "flash_attn"
    return "explicit"


@pytest.mark.parametrize("sm_name", sorted(SM))
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_attention_call_goes_to_a_kernel_that_accepts_it(on_gpu, sm_name, dtype):
    sm = SM[sm_name]
    rows = _run_matrix(on_gpu, sm, dtype)
    assert len(rows) == len(LENGTHS) * 2 * 2  # two layers per forward: full, then [CLS] only
    bad = [(length, training, c["kernels"], c["problems"]) for length, training, c in rows
           if len(c["kernels"]) != 1 or c["problems"]]
    assert not bad, f"{sm_name} {dtype}: calls a kernel rejects or misreads: {bad}"
    assert {c["kernels"][0] for _, _, c in rows} == {_expected_kernel(sm, dtype)}
    # The [CLS]-only layer's queries are one row; its keys are still every token.
    if _expected_kernel(sm, dtype) == "flash_attn":
        cls_calls = [c for _, _, c in rows[1::2]]
        assert all(c["q"][1] == 1 and c["k"][1] in LENGTHS and c["mask"][2] == 1 for c in cls_calls)
        assert {c["p"] for _, training, c in rows if training} == {0.1}  # dropout kept


@pytest.mark.parametrize("sm_name", ["sm70", "sm80"])
def test_without_the_guard_paddles_selector_picks_kernels_that_reject_the_mask(on_gpu, monkeypatch, sm_name):
    # Handing every call to SDPA (the model before this guard) fails at fp32 on every Paddle:
    # 3.3 -> memory-efficient kernel, 3.0-3.2 -> variable-length kernel, 2.6 -> flash in fp32.
    monkeypatch.setattr(M, "flash_applies", lambda q: True)
    rows = _run_matrix(on_gpu, SM[sm_name], "float32")
    bad = {c["kernels"][0] for _, _, c in rows if c["problems"]}
    assert bad & {"mem_efficient", "variable_length_mem_efficient", "flash_attn"}, rows


def test_flash_switched_off_by_the_user_sends_every_call_to_the_explicit_path(on_gpu):
    # sdp_kernel(enable_flash=False) (or a CUDA build without flash on 3.3): the selector would
    # fall through to the memory-efficient kernels, so the model must not call SDPA at all.
    rows = []
    for length in LENGTHS:
        rec = on_gpu(SM["sm80"], "float16")
        with FLASH_MOD.sdp_kernel(enable_math=True, enable_flash=False, enable_mem_efficient=True):
            _forward(length, training=True)
        rows += rec.calls
    assert len(rows) == 2 * len(LENGTHS)
    assert all(c["kernels"] == ["explicit"] and not c["problems"] for c in rows), rows
