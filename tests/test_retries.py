"""--retries: which failed attempts run again (crashes only, bounded, not deterministic ones)."""

import pytest

from autoft.tuner import retries
from autoft.tuner.retries import attempt_path, decide, deterministic_cause

TRANSIENT = """# autofinetune trial 3 on cpu0
Traceback (most recent call last):
  File "train.py", line 9, in <module>
RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1191, unhandled system error
"""
DISK_FULL = "Traceback (most recent call last):\nOSError: [Errno 28] No space left on device: '/tmp/x'\n"
GPU_OOM = ("Traceback (most recent call last):\nMemoryError: \n\n"
           "ResourceExhaustedError: Out of memory error on GPU 0. Cannot allocate 1.2GB memory\n")
TORCH_OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
ARGPARSE = "usage: train.py [-h] [--dataset DATASET]\ntrain.py: error: unrecognized arguments: --lr=1\n"
AUTOFT_USAGE = "error: --blocks must be >= 0, found -3 (see train.py --help)\n"
CODE_BUG = "Traceback (most recent call last):\n  File \"train.py\", line 3\nNameError: name 'mdoel' is not defined\n"
CHAINED = ("AttributeError: 'NoneType' object has no attribute 'x'\n\nDuring handling of the above exception, "
           "another exception occurred:\n\nConnectionResetError: [Errno 104] Connection reset by peer\n")


@pytest.mark.parametrize("log, code", [(TRANSIENT, 1), (DISK_FULL, 1), ("", -9), (CHAINED, 1),
                                       ("error: something\n", 1)])
def test_a_transient_looking_crash_is_retried(log, code):
    d = decide(retries.CRASHED, attempt=1, max_retries=2, log_tail=log, exit_code=code)
    assert d.retry and d.why == "retry 1 of 2 (--retries 2)"


@pytest.mark.parametrize("log, code, cause", [
    (GPU_OOM, 1, "out of memory"), (TORCH_OOM, 1, "out of memory"),
    (ARGPARSE, 2, "usage error"), (AUTOFT_USAGE, 2, "usage error"),
    (CODE_BUG, 1, "error in the code (NameError)"),
])
def test_a_crash_whose_log_shows_a_deterministic_cause_is_not_retried(log, code, cause):
    d = decide(retries.CRASHED, attempt=1, max_retries=3, log_tail=log, exit_code=code)
    assert not d.retry and cause in d.why
    assert cause in deterministic_cause(log, code)


def test_exit_code_2_without_an_error_line_is_not_a_usage_error():
    assert deterministic_cause("Traceback ...\nKeyError: 'x'\n", 2) is None


@pytest.mark.parametrize("kind", [retries.PRUNED, retries.TIMED_OUT, retries.NO_REPORT, retries.BAD_SCORE,
                                  retries.LAUNCH])
def test_pruned_timed_out_silent_and_unlaunched_trials_are_never_retried(kind):
    d = decide(kind, attempt=1, max_retries=5, log_tail=TRANSIENT, exit_code=1)
    assert not d.retry and "never retried" in d.why


def test_retries_are_bounded():
    verdicts = [decide(retries.LOST, attempt=a, max_retries=2).retry for a in (1, 2, 3)]
    assert verdicts == [True, True, False]
    assert "2 retries used" in decide(retries.CRASHED, attempt=3, max_retries=2).why
    assert not decide(retries.CRASHED, attempt=1, max_retries=0).retry  # --retries 0 (the default)


def test_attempt_paths_keep_every_attempts_files(tmp_path):
    log = tmp_path / "round0" / "log-3.info"
    assert attempt_path(log, 1) == log
    assert attempt_path(log, 2) == tmp_path / "round0" / "log-3.attempt2.info"
    assert attempt_path(tmp_path / "result-3.txt", 3).name == "result-3.attempt3.txt"


@pytest.mark.parametrize("status, reason, kind, code", [
    ("FAILED", "crashed: exit code 3", retries.CRASHED, 3),
    ("FAILED", "crashed: killed by signal 9 (SIGKILL)", retries.CRASHED, None),
    ("FAILED", "crashed: exit code 1 (after reporting 0.5)", retries.CRASHED, 1),
    ("FAILED", "Ray task failed (NodeDiedError: node gone)", retries.LOST, None),
    ("FAILED", "timed out after 5s (--trial_timeout); process group killed", retries.TIMED_OUT, None),
    ("FAILED", "exited 0 but never called report_final_result", retries.NO_REPORT, None),
    ("FAILED", "reported a non-finite score (nan)", retries.BAD_SCORE, None),
    ("PRUNED", "pruned (median) at step 3: ...", retries.PRUNED, None),
    ("FAILED", "could not start: [Errno 13] Permission denied", retries.LAUNCH, None),
])
def test_failure_kind_reads_the_backends_reasons(status, reason, kind, code):
    assert retries.failure_kind(status, reason) == (kind, code)
