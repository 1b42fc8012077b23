from autoft import runtime
from autoft.errors import AutoftError, run_cli


def test_threads_split_cores_between_slots():
    assert runtime.threads_for(cpu_slots=2, cores=2) == 1
    assert runtime.threads_for(cpu_slots=1, cores=2) == 2
    assert runtime.threads_for(cpu_slots=3, cores=2) == 1
    assert runtime.threads_for(cpu_slots=2, cores=8) == 4


def test_setup_respects_user_threads_and_sets_slots():
    env = {"OMP_NUM_THREADS": "7"}
    line = runtime.setup_process(environ=env)
    assert env["OMP_NUM_THREADS"] == "7" and "set by user" in line
    env = {runtime.CPU_SLOTS_ENV: str(runtime.usable_cores())}
    runtime.setup_process(environ=env)
    assert env["OMP_NUM_THREADS"] == "1"


def test_setup_sets_mkl_only_on_amd_and_never_overrides(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_vendor", lambda: "AuthenticAMD")
    env = {}
    runtime.setup_process(environ=env)
    assert env["MKL_DEBUG_CPU_TYPE"] == "5"
    env = {"MKL_DEBUG_CPU_TYPE": "0"}
    runtime.setup_process(environ=env)
    assert env["MKL_DEBUG_CPU_TYPE"] == "0"
    monkeypatch.setattr(runtime, "cpu_vendor", lambda: "GenuineIntel")
    env = {}
    runtime.setup_process(environ=env)
    assert "MKL_DEBUG_CPU_TYPE" not in env


def test_run_cli_turns_errors_into_exit_code(capsys):
    def main(argv):
        raise AutoftError("data.tsv:3: expected 2 columns, found 1")

    assert run_cli(main, []) == 2
    assert "error: data.tsv:3: expected 2 columns, found 1" in capsys.readouterr().err


def _child(code, **env_overrides):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_trial_child_with_slots_gets_its_share_of_cores_and_paddle_imports_quietly():
    code = (
        "import os\n"
        "from autoft import runtime\n"
        "paddle = runtime.import_paddle()\n"
        "print(os.environ['OMP_NUM_THREADS'], runtime.usable_cores())\n"
    )
    out = _child(code, AUTOFT_CPU_SLOTS="2")
    assert out.returncode == 0, out.stderr
    threads, cores = map(int, out.stdout.split())
    assert threads == max(1, cores // 2)
    # Paddle's "OMP_NUM_THREADS set to N, not 1" banner and the ccache warning are filtered.
    out = _child(code, OMP_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "2"
    assert "OMP_NUM_THREADS" not in out.stderr and "ccache" not in out.stderr
