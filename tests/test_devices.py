"""GPUs as schedulers hand them out: --gpu ids, CUDA_VISIBLE_DEVICES (indices, UUIDs, MIG), thread
budgets, allocator flags and the memory pre-check, all against a fake `nvidia-smi` on PATH."""

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from autoft.errors import AutoftError
from autoft.runtime import CPU_SLOTS_ENV
from autoft.tuner import devices, gpu_memory
from autoft.tuner.devices import Slot, parse_nvidia_smi_list, plan_slots, visible_gpus

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tuner_cli import SPACE_YAML, TOY, assert_clean_error, run_cli  # noqa: E402

GIB = 1024**3

FOUR_GPUS = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa1111-0000-0000-0000-000000000000)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb2222-0000-0000-0000-000000000000)
GPU 2: Tesla V100-SXM2-16GB (UUID: GPU-cccc3333-0000-0000-0000-000000000000)
GPU 3: Tesla V100-SXM2-16GB (UUID: GPU-dddd4444-0000-0000-0000-000000000000)
"""
FOUR_MEMORY = """0, GPU-aaaa1111-0000-0000-0000-000000000000, 40960
1, GPU-bbbb2222-0000-0000-0000-000000000000, 40960
2, GPU-cccc3333-0000-0000-0000-000000000000, 16384
3, GPU-dddd4444-0000-0000-0000-000000000000, 16384
"""
MIG_GPUS = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa1111-0000-0000-0000-000000000000)
  MIG 3g.20gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)
  MIG 2g.10gb     Device  1: (UUID: MIG-66666666-7777-8888-9999-000000000000)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb2222-0000-0000-0000-000000000000)
"""


def fake_smi(tmp_path, listing=FOUR_GPUS, memory=FOUR_MEMORY):
    """A PATH holding an `nvidia-smi` that answers `-L` and the memory query like the real one."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "L.txt").write_text(listing)
    (bindir / "mem.txt").write_text(memory)
    smi = bindir / "nvidia-smi"
    smi.write_text(f"""#!/bin/sh
case "$1" in
  -L) cat '{bindir}/L.txt' ;;
  --query-gpu=index,uuid,memory.total) [ "$2" = --format=csv,noheader,nounits ] && cat '{bindir}/mem.txt' ;;
  *) echo "fake nvidia-smi: unexpected $*" >&2; exit 9 ;;
esac
""")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    return f"{bindir}{os.pathsep}/usr/bin:/bin"


def env_with(tmp_path, visible=None, **extra):
    env = {"PATH": fake_smi(tmp_path), **extra}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    return env


def entries(slots):
    return [s.env["CUDA_VISIBLE_DEVICES"] for s in slots]


def test_nvidia_smi_list_with_mig_instances():
    gpus = parse_nvidia_smi_list(MIG_GPUS)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[0].uuid.startswith("GPU-aaaa1111") and gpus[0].name == "NVIDIA A100-SXM4-40GB"
    assert [(m.profile, m.uuid[:12]) for m in gpus[0].migs] == [("3g.20gb", "MIG-11111111"), ("2g.10gb", "MIG-66666666")]
    assert gpus[1].migs == ()


def test_without_cuda_visible_devices_ids_are_nvidia_smi_indices(tmp_path):
    env = env_with(tmp_path)
    slots = plan_slots("0,2", None, 1, environ=env)
    assert entries(slots) == ["0", "2"]  # K = 1: no GPU shared
    assert all(s.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for s in slots)


def test_cuda_visible_devices_indices_are_positions(tmp_path):
    env = env_with(tmp_path, "2,3")
    assert entries(plan_slots("0,1", None, 1, environ=env)) == ["2", "3"]
    assert entries(plan_slots(None, None, 1, environ=env)) == ["2"]  # PaddleHub's default --gpu 0
    with pytest.raises(AutoftError) as err:
        plan_slots("0,1,2,3", None, 1, environ=env)
    msg = str(err.value)
    assert msg.startswith("valid --gpu ids here: 0,1 "), msg
    assert "0 = 2, 1 = 3" in msg and "names GPU(s) 2,3" in msg and "--cpu_slots" in msg


def test_cuda_visible_devices_uuids_and_prefixes_pass_through(tmp_path):
    env = env_with(tmp_path, "GPU-dddd4444-0000-0000-0000-000000000000,GPU-aaaa1111")
    slots = plan_slots("0,1", None, 2, environ=env)
    assert entries(slots) == ["GPU-dddd4444-0000-0000-0000-000000000000", "GPU-aaaa1111"] * 2
    gpus, _ = visible_gpus(env)
    assert [g.physical.index for g in gpus] == [3, 0]


def test_cuda_visible_devices_mig_instances(tmp_path):
    env = {"PATH": fake_smi(tmp_path, MIG_GPUS),
           "CUDA_VISIBLE_DEVICES": "MIG-66666666-7777-8888-9999-000000000000,MIG-11111111-2222-3333-4444-555555555555"}
    slots = plan_slots("0,1", None, 1, environ=env)
    assert entries(slots) == env["CUDA_VISIBLE_DEVICES"].split(",")
    gpus, _ = visible_gpus(env)
    assert [g.mig.profile for g in gpus] == ["2g.10gb", "3g.20gb"]


def test_an_entry_that_names_no_gpu_ends_the_list_as_in_cuda(tmp_path):
    env = env_with(tmp_path, "1,7,0")
    gpus, how = visible_gpus(env)
    assert [g.entry for g in gpus] == ["1"]
    assert "'7' names no GPU here" in how
    with pytest.raises(AutoftError, match=r"^valid --gpu ids here: 0 \(.*names GPU\(s\) 1\."):
        plan_slots("0,1", None, 1, environ=env)
    with pytest.raises(AutoftError, match=r"^valid --gpu ids here: none \(no GPU visible .*'GPU-ffff' names no GPU"):
        plan_slots("0", None, 1, environ=env_with(tmp_path, "GPU-ffff,0"))


def test_no_gpu_at_all_lists_none_and_suggests_cpu_slots(tmp_path):
    env = {"PATH": str(tmp_path)}  # no nvidia-smi
    if os.path.isdir("/proc/driver/nvidia/gpus"):
        env["CUDA_VISIBLE_DEVICES"] = ""
    with pytest.raises(AutoftError) as err:
        plan_slots("0,1", None, 1, environ=env)
    assert str(err.value).startswith("valid --gpu ids here: none (no GPU")
    assert "--gpu=0,1 names GPU(s) 0,1" in str(err.value) and "--cpu_slots N" in str(err.value)


def test_gpu_trials_share_the_cores_unless_the_user_fixed_threads(tmp_path):
    slots = plan_slots("0,1,2", None, 2, environ=env_with(tmp_path))
    assert len(slots) == 6 and sorted(entries(slots)) == ["0", "0", "1", "1", "2", "2"]
    assert {s.env[CPU_SLOTS_ENV] for s in slots} == {"6"}  # cores / concurrent trials, in each trial
    fixed = plan_slots("0,1", None, 1, environ=env_with(tmp_path, OMP_NUM_THREADS="3", CUDA_DEVICE_ORDER="FASTEST_FIRST"))
    assert all(CPU_SLOTS_ENV not in s.env and "CUDA_DEVICE_ORDER" not in s.env for s in fixed)
    cpu = plan_slots(None, 2, environ={})
    assert [s.env for s in cpu] == [{"CUDA_VISIBLE_DEVICES": "", CPU_SLOTS_ENV: "2"}] * 2


def test_naive_best_fit_with_several_trials_per_gpu_becomes_auto_growth(tmp_path, capsys):
    env = env_with(tmp_path, FLAGS_allocator_strategy="naive_best_fit")
    assert all("FLAGS_allocator_strategy" not in s.env for s in plan_slots("0", None, 1, environ=env))
    slots = plan_slots("0", None, 2, environ=env)
    assert {s.env["FLAGS_allocator_strategy"] for s in slots} == {"auto_growth"}
    assert "naive_best_fit" in capsys.readouterr().err
    sized = dict(env, FLAGS_fraction_of_gpu_memory_to_use="0.4")
    assert all("FLAGS_allocator_strategy" not in s.env for s in plan_slots("0", None, 2, environ=sized))


def test_the_tuner_hands_each_trial_its_entry_and_thread_budget(tmp_path):
    # The real CLI with the fake nvidia-smi and a UUID allocation; OMP_NUM_THREADS unset as for a user.
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", CPU_SLOTS_ENV, "CUDA_DEVICE_ORDER")}
    env["PATH"] = fake_smi(tmp_path) + os.pathsep + env.get("PATH", "")
    env["CUDA_VISIBLE_DEVICES"] = "GPU-cccc3333,GPU-aaaa1111"
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    rec = tmp_path / "rec"
    proc = run_cli([TOY, "--param_file", "hp.yaml", "--gpu", "0,1", "--popsize", "4", "--round", "1",
                    "--output_dir", "out", "--seed", "3", "record_dir", rec], tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    starts = [json.loads(p.read_text()) for p in rec.glob("*-start.json")]
    assert len(starts) == 4
    assert {s["cuda"] for s in starts} == {"GPU-cccc3333", "GPU-aaaa1111"}
    assert {s["cpu_slots"] for s in starts} == {"2"}
    absent = run_cli([TOY, "--param_file", "hp.yaml", "--gpu", "2"], tmp_path, env=env)
    assert_clean_error(absent, "valid --gpu ids here: 0,1", "0 = GPU-cccc3333, 1 = GPU-aaaa1111", "GPU(s) 2")


# ---- memory pre-check ---------------------------------------------------------------------------

def gpu_slots(env, gpu="0,1", k=1):
    return plan_slots(gpu, None, k, environ=env)


def test_memory_fits_quietly_and_borderline_warns(tmp_path):
    env = env_with(tmp_path)
    assert gpu_memory.check_gpu_memory(gpu_slots(env), 10 * GIB, 1, environ=env) == []
    assert gpu_memory.check_gpu_memory(gpu_slots(env, k=3), 11 * GIB, 3, environ=env) == []  # 34.5 of 40
    warn = gpu_memory.check_gpu_memory(gpu_slots(env, "2"), 15 * GIB, 1, environ=env)
    assert len(warn) == 1 and "GPU 2 (16.0 GiB)" in warn[0] and "borderline" in warn[0]


def test_k_trials_that_cannot_fit_are_refused_naming_how_many_fit(tmp_path):
    env = env_with(tmp_path)
    with pytest.raises(AutoftError) as err:  # the TNEWS/LCQMC 16x128 estimate on 16 GB V100s
        gpu_memory.check_gpu_memory(gpu_slots(env, "0,2", 2), int(9.9 * GIB), 2, environ=env)
    msg = str(err.value)
    assert msg.startswith("--trials_per_gpu 2 does not fit: GPU 2 (16.0 GiB): 2 trial(s) x ~9.9 GiB"), msg
    assert "GPU 0" not in msg  # the 40 GB card holds two
    assert "at most 1 fit(s)" in msg and "Use --trials_per_gpu 1" in msg and "--amp" in msg


def test_one_trial_larger_than_the_card_is_a_warning(tmp_path):
    env = env_with(tmp_path)
    warn = gpu_memory.check_gpu_memory(gpu_slots(env, "2"), 20 * GIB, 1, environ=env)
    assert len(warn) == 1 and "exceeds the card" in warn[0] and "grad_accum" in warn[0]


def test_memory_by_uuid_and_mig_profile(tmp_path):
    env = env_with(tmp_path, "GPU-cccc3333")
    with pytest.raises(AutoftError, match="GPU GPU-cccc3333 \\(16.0 GiB\\)"):
        gpu_memory.check_gpu_memory(gpu_slots(env, "0", 2), 9 * GIB, 2, environ=env)
    mig = {"PATH": fake_smi(tmp_path, MIG_GPUS, "0, GPU-aaaa1111-0000-0000-0000-000000000000, 40960\n"),
           "CUDA_VISIBLE_DEVICES": "MIG-66666666-7777-8888-9999-000000000000"}
    warn = gpu_memory.check_gpu_memory(gpu_slots(mig, "0"), int(9.5 * GIB), 1, environ=mig)  # 2g.10gb = 9.3 GiB
    assert len(warn) == 1 and "exceeds the card" in warn[0] and "(9.3 GiB)" in warn[0]


def test_unknown_memory_and_cpu_slots(tmp_path):
    env = env_with(tmp_path)
    broken = {"PATH": fake_smi(tmp_path, FOUR_GPUS, "garbage\n")}
    warn = gpu_memory.check_gpu_memory(gpu_slots(env, "0"), GIB, 1, environ=broken)
    assert len(warn) == 1 and "memory unknown" in warn[0] and "skipped" in warn[0]
    assert gpu_memory.check_gpu_memory(plan_slots(None, 2, environ={}), 100 * GIB, 1, environ=env) == []
    assert gpu_memory.check_gpu_memory([Slot("x", {})], 100 * GIB, 1, environ=env) == []


def test_fake_nvidia_smi_is_the_one_used(tmp_path):
    # Guards the tests above: they must not read a real nvidia-smi on a GPU machine.
    env = env_with(tmp_path)
    assert shutil.which("nvidia-smi", path=env["PATH"]).startswith(str(tmp_path))
    assert devices.physical_gpus(env)[0][2].name == "Tesla V100-SXM2-16GB"


def test_the_check_output_seam(tmp_path):
    env = env_with(tmp_path)
    out = f"loading model\n{gpu_memory.estimate_line(int(9.9 * GIB))}\ncheck OK\n"
    assert gpu_memory.estimate_from_output(out) == int(9.9 * GIB)
    with pytest.raises(AutoftError, match="--trials_per_gpu 2 does not fit"):
        gpu_memory.precheck(gpu_slots(env, "2", 2), out, 2, environ=env)
    assert gpu_memory.precheck(gpu_slots(env, "2", 2), "check OK\n", 2, environ=env) == []  # another script
