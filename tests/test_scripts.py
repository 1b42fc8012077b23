"""The per-dataset scripts run the seed's command; on a machine without the GPUs they stop with
the tuner's clear message (exit 2) before anything is started or written."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="scripts use the repo's .venv")
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has GPUs: the search would start")
@pytest.mark.parametrize("task", ["tnews", "xnli"])
def test_dataset_script_runs_the_seed_command_and_reports_missing_gpus(task, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CPU_SLOTS", "CUDA_VISIBLE_DEVICES")}
    env.update(GPUS="0,1,2,3", OUTPUT_DIR=str(tmp_path / "out"), PATH="/usr/bin:/bin")
    out = subprocess.run(["bash", str(ROOT / "scripts" / f"{task}.sh")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "--gpu=0,1,2,3" in out.stderr and "--cpu_slots" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()
