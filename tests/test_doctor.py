"""``autoft doctor`` on this CPU box: the real command in a subprocess, its lines and its JSON."""

import json
import os
import subprocess
import sys

from autoft import doctor


def test_doctor_runs_the_cpu_checks_and_names_the_gpu_checks_it_skipped(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "autoft.cli", "doctor", "--layers", "1", "--batch", "2",
                           "--steps", "1"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    status = {line[6:28].strip(): line[:4].strip() for line in lines if line[:4] in ("PASS", "FAIL", "SKIP", "INFO")}
    for task in doctor.TASK_SHAPES:
        assert status[f"train {task} fp32"] == "PASS"
        assert status[f"train {task} fp16"] == status[f"train {task} bf16"] == "SKIP"
        assert status[f"kernels {task}"] == status[f"memory {task}"] == "INFO"
    assert status["paths agree"] == "PASS"
    assert status["gpus"] == status["flash attention"] == "SKIP"
    assert "FAIL" not in status.values()
    assert any("0 failed" in line and "gpus, flash attention, 8 --amp train steps" in line for line in lines)

    report = json.loads((tmp_path / "autoft-doctor.json").read_text())  # the default --output
    assert report["counts"] == {"PASS": 5, "FAIL": 0, "SKIP": 10, "INFO": 10}
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["model"]["data"]["layers"] == 1
    assert checks["paths agree"]["data"]["max_relative_difference"] <= doctor.PATH_TOLERANCE
    for task, (_, seq, _) in doctor.TASK_SHAPES.items():
        train = checks[f"train {task} fp32"]["data"]
        assert train["path"] == "cpu" and train["seq"] == seq and train["batch"] == 2
        assert train["steps_per_s"] > 0 and train["loss"] > 0
    assert checks["memory xnli"]["data"]["estimate_bytes"]["fp32"] > 14 * 2**30
    assert set(report["skipped"]) == {"gpus", "flash attention"} | {
        f"train {t} {amp}" for t in doctor.TASK_SHAPES for amp in ("fp16", "bf16")}


def test_a_gpu_slot_without_a_cuda_paddle_is_a_failure(monkeypatch, capsys):
    from autoft.runtime import import_paddle

    paddle = import_paddle()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    report = doctor.Report()
    doctor.check_gpus(report, paddle, gpus=[])
    (check,) = report.checks
    assert check.status == "FAIL" and "CUDA_VISIBLE_DEVICES=3" in check.detail and "paddlepaddle-gpu" in check.detail
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    doctor.check_gpus(report, paddle, gpus=[])
    assert report.checks[-1].status == "SKIP"
    assert "FAIL  gpus" in capsys.readouterr().out
