import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoft import runtime
from autoft.errors import AutoftError, run_cli

ROOT = Path(__file__).resolve().parents[1]


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


def _child(code, argv=(), cwd=None, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True,
                          timeout=180, cwd=cwd)


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


LOGGING_CHILD = """
import logging, sys
root = logging.getLogger()
before = (root.level, list(root.handlers))
from autoft import runtime
runtime.setup_process()
{import_line}
after = (root.level, list(root.handlers))
print("same" if after == before else f"changed {{before}} -> {{after}}")
"""


@pytest.mark.parametrize("import_line", ["import autoft.model  # a module's own top-level `import paddle`",
                                         "runtime.import_paddle()"])
def test_import_paddle_leaves_the_root_logger_as_it_was(import_line):
    # Paddle 2.6-3.2 set the root logger to WARNING and add a handler; 3.3 sets INFO and adds one.
    out = _child(LOGGING_CHILD.format(import_line=import_line))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "same", out.stdout


def test_info_logs_configured_before_paddle_stay_visible():
    # What train.py does: basicConfig(INFO) first, Paddle imported later. On 2.6.2 the INFO line vanished.
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, format='LOG %(message)s', stream=sys.stderr)\n"
        "from autoft import runtime\n"
        "runtime.import_paddle()\n"
        "logging.getLogger('autoft.test').info('after the import')\n"
    )
    out = _child(code)
    assert out.returncode == 0, out.stderr
    assert "LOG after the import" in out.stderr.splitlines(), out.stderr


def test_no_thread_banner_from_a_top_level_paddle_import(tmp_path):
    # `autoft convert` ran setup_process() and then autoft/model.py's plain `import paddle`:
    # Paddle printed "OMP_NUM_THREADS set to 2, not 1 ... PLEASE USE OMP_NUM_THREADS WISELY."
    out = _child("from autoft import runtime\nruntime.setup_process()\nimport autoft.model\n",
                 OMP_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr
    assert "OMP_NUM_THREADS" not in out.stderr and "WISELY" not in out.stderr, out.stderr


def test_autoft_convert_prints_no_paddle_thread_warning(tmp_path):
    import paddle

    from autoft.checkpoint import save_pretrained
    from autoft.model import BertConfig, BertModel

    paddle.seed(0)
    config = BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=8, max_position_embeddings=8)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"]) + "\n")
    save_pretrained(BertModel(config), tmp_path / "src", vocab)
    code = "import sys\nfrom autoft.cli import main\nmain(sys.argv[1:])\n"
    out = _child(code, OMP_NUM_THREADS="2", argv=["convert", str(tmp_path / "src"), str(tmp_path / "dst")])
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout
    assert "OMP_NUM_THREADS" not in out.stderr and "WISELY" not in out.stderr, out.stderr


def test_other_stderr_output_of_the_paddle_import_is_passed_through(capsys):
    with runtime.paddle_import_guard():
        print("WARNING: OMP_NUM_THREADS set to 2, not 1. ...", file=sys.stderr)
        print("PLEASE USE OMP_NUM_THREADS WISELY.", file=sys.stderr)
        print("a real problem", file=sys.stderr)
    assert capsys.readouterr().err == "a real problem\n"


HIDE_PADDLE = """
import importlib.machinery as m, runpy, sys
find = m.PathFinder.find_spec
m.PathFinder.find_spec = classmethod(lambda cls, name, path=None, target=None:
                                     None if name == "paddle" else find(name, path, target))
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script", ["train.py", "predict.py"])
def test_missing_paddle_is_one_message_naming_both_wheels(script, tmp_path):
    for name in ("config.json", "model.safetensors", "labels.json"):  # predict.py looks for a model first
        (tmp_path / name).write_text("{}")
    out = _child(HIDE_PADDLE, argv=[str(ROOT / script), "--dataset", "demo", "--checkpoint_dir", str(tmp_path)],
                 cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Paddle is not installed"), out.stderr
    for needle in ("pip install paddlepaddle`", "paddlepaddle-gpu==2.6.2", "CUDA 12",
                   "https://www.paddlepaddle.org.cn/packages/stable/cu126/"):
        assert needle in lines[0]


def test_missing_paddle_from_a_top_level_import_is_the_same_message(tmp_path):
    # `autoft convert` imports autoft.model (a plain `import paddle` at its top) after setup_process().
    code = HIDE_PADDLE.replace('runpy.run_path(sys.argv[0], run_name="__main__")',
                               "from autoft.cli import main; main(sys.argv[1:])")
    out = _child(code, argv=["autoft", "convert", str(tmp_path / "src"), str(tmp_path / "dst")], cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stderr.startswith("error: Paddle is not installed") and "Traceback" not in out.stderr, out.stderr
    probe = _child(HIDE_PADDLE.split("sys.argv = ")[0]
                   + "from autoft import runtime\nruntime.setup_process()\n"
                   "import importlib.util\nprint(importlib.util.find_spec('paddle'))\n")
    assert probe.returncode == 0 and probe.stdout.strip() == "None", probe.stderr  # a probe is not an error


def test_zlib_users_after_the_paddle_import_do_not_crash():
    # Paddle 2.6.2 exports an old zlib: `import paddle, cma` (or snownlp) crashed in inflateReset2
    # unless Python's zlib module was loaded before Paddle, which runtime makes sure of.
    code = ("from autoft import runtime\nruntime.setup_process()\nimport paddle, cma, snownlp, zlib\n"
            "print(zlib.decompress(zlib.compress(b'x' * 999)) == b'x' * 999, snownlp.SnowNLP('好').words)\n")
    out = _child(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "True"


def test_missing_paddle_is_still_an_import_error():
    exc = runtime.PaddleNotInstalled("x", name="paddle")
    assert isinstance(exc, ImportError) and isinstance(exc, AutoftError) and exc.name == "paddle"
