"""The tuner's command line refusals: each drives the real CLI in a subprocess and checks the
exit code, the message and that no traceback is shown. No search runs in this file."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy" / "quadratic.py"

SPACE_YAML = """param_list:
- name: x
  init_value: 6.0
  type: float
  greater_than: 0.0
  lower_than: 10.0
- name: y
  init_value: -2.0
  type: float
  greater_than: -5.0
  lower_than: 5.0
- name: n
  init_value: 10
  type: int
  greater_than: 0
  lower_than: 40
"""


def run_cli(args, cwd, env=None, entry="autofinetune", timeout=120):
    """Run `autofinetune ...` (or `hub ...`) as a user would, through its console-script function."""
    func = {"autofinetune": "main", "hub": "hub_main"}[entry]
    code = f"import sys; from autoft.tuner.cli import {func}; sys.argv[0] = {entry!r}; {func}()"
    full_env = dict(os.environ if env is None else env)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def no_gpu_env():
    """An environment in which no GPU is visible, on any machine."""
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def test_seed_command_verbatim_on_a_machine_without_gpus_says_so_and_suggests_cpu_slots(tmp_path):
    # The seed's README command, token for token; only the environment is fixed so that the
    # test means the same on a machine that has GPUs.
    shutil.copy(ROOT / "hparam.yaml", tmp_path / "hparam.yaml")
    shutil.copy(TOY, tmp_path / "train.py")
    args = ["autofinetune", "train.py", "--param_file=hparam.yaml", "--gpu=0,1,2,3,4,5,6,7", "--popsize=16",
            "--round=10", "--output_dir=./output", "--evaluator=fulltrail", "--tuning_strategy=hazero",
            "dataset", "TNEWS"]
    env = os.environ if shutil.which("nvidia-smi") is None and not os.path.isdir("/proc/driver/nvidia") \
        else no_gpu_env()
    proc = run_cli(args, tmp_path, env=env, entry="hub")
    assert_clean_error(proc, "--gpu=0,1,2,3,4,5,6,7", "no GPU", "--cpu_slots N")
    assert not (tmp_path / "output").exists()


def test_default_gpu_without_gpus_is_refused_not_silently_moved_to_cpu(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    proc = run_cli([TOY, "--param_file", "hp.yaml"], tmp_path, env=no_gpu_env())
    assert_clean_error(proc, "--gpu (default 0)", "--cpu_slots")


def test_fake_nvidia_smi_gpus_become_per_trial_cuda_visible_devices(tmp_path):
    # A stand-in nvidia-smi on PATH lists two GPUs; trials must get one GPU id each.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: Fake (UUID: GPU-a)'\necho 'GPU 1: Fake (UUID: GPU-b)'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env.pop("CUDA_VISIBLE_DEVICES", None)
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)

    absent = run_cli([TOY, "--param_file", "hp.yaml", "--gpu", "0,5"], tmp_path, env=env)
    assert_clean_error(absent, "GPU(s) 5", "GPUs 0,1", "--cpu_slots")

    rec = tmp_path / "rec"
    proc = run_cli([TOY, "--param_file", "hp.yaml", "--gpu", "0,1", "--popsize", "4", "--round", "1",
                    "--output_dir", "out", "--seed", "3", "record_dir", rec], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    import json

    starts = [json.loads(p.read_text()) for p in rec.glob("*-start.json")]
    assert len(starts) == 4
    assert {s["cuda"] for s in starts} == {"0", "1"}
    # conftest sets OMP_NUM_THREADS=1, which wins over the per-trial thread share (AUTOFT_CPU_SLOTS)
    assert all(s["cpu_slots"] is None for s in starts)


@pytest.mark.parametrize(
    "old, new, needles",
    [
        ("init_value: 6.0", "init_value: 60.0", ["entry 1 (x)", "init_value 60.0 is outside its bounds"]),
        ("type: float", "type: double", ["entry 1 (x)", "'type' must be int or float", "'double'"]),
    ],
)
def test_hparam_yaml_errors_surface_through_the_cli_with_exit_2(tmp_path, old, new, needles):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML.replace(old, new, 1))
    proc = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "--output_dir", "out"], tmp_path)
    assert_clean_error(proc, "hp.yaml:", *needles)
    assert not (tmp_path / "out").exists()


def test_hazero_with_one_hyperparameter_is_refused_with_the_reason(tmp_path):
    (tmp_path / "hp.yaml").write_text("\n".join(SPACE_YAML.splitlines()[:6]) + "\n")
    proc = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "--tuning_strategy", "HAZero",
                    "--output_dir", "out"], tmp_path)
    assert_clean_error(proc, "HAZero")
    assert not (tmp_path / "out").exists()


def test_odd_trailing_options_and_late_flags_are_errors(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    odd = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "dataset", "TNEWS", "extra"], tmp_path)
    assert_clean_error(odd, "odd number", "'extra'")
    late = run_cli([TOY, "--param_file", "hp.yaml", "dataset", "TNEWS", "--cpu_slots", "1"], tmp_path)
    assert_clean_error(late, "--cpu_slots comes after")


def test_hub_with_another_subcommand_explains_the_paddlehub_name_clash(tmp_path):
    proc = run_cli(["install", "ernie"], tmp_path, entry="hub")
    assert_clean_error(proc, "`hub install ernie`", "only provides `hub autofinetune`", "PaddleHub 2.x",
                       "autofinetune ...")


def test_bad_evaluator_gpu_plus_cpu_slots_and_keep_models_0_are_refused(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    bad = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "--evaluator", "grid"], tmp_path)
    assert_clean_error(bad, "--evaluator", "'grid'")
    both = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "--gpu", "0"], tmp_path)
    assert_clean_error(both, "--gpu=0 and --cpu_slots=1")
    keep0 = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "--keep_models", "0"], tmp_path)
    assert_clean_error(keep0, "--keep_models must be at least 1", "found 0")


def test_tuner_flags_are_validated_in_one_line_naming_the_flag_and_help_lists_debug(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    for flags, needle in ((["--popsize", "0"], "--popsize must be at least 1"),
                          (["--round", "0"], "--round must be at least 1"),
                          (["--trials_per_gpu", "0"], "--trials_per_gpu must be at least 1"),
                          (["--trial_timeout", "-3"], "--trial_timeout must be positive"),
                          (["--cpu_slots", "0"], "--cpu_slots must be at least 1")):
        proc = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", *flags], tmp_path)
        assert_clean_error(proc, needle)
        assert not (tmp_path / "output").exists() and len(proc.stderr.splitlines()) == 1
    bad = run_cli([TOY, "--param_file", "hp.yaml", "--popsize", "many"], tmp_path)
    assert_clean_error(bad, "argument --popsize: invalid int value: 'many'", "--help")
    assert len(bad.stderr.splitlines()) == 1  # no usage block
    helped = run_cli(["--help"], tmp_path)
    assert helped.returncode == 0 and "--debug" in helped.stdout and "(default: 5)" in helped.stdout
