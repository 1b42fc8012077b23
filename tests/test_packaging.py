"""Installing autoft never installs (or replaces) a Paddle: the package metadata requires none, and
scripts/setup.sh's wheel choice (scripts/paddle_wheel.py) keeps an installed GPU wheel."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PADDLE_NAMES = re.compile(r"^(paddlepaddle|paddlepaddle-gpu|paddle)\b", re.IGNORECASE)


def load_paddle_wheel():
    spec = importlib.util.spec_from_file_location("paddle_wheel", ROOT / "scripts" / "paddle_wheel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pw = load_paddle_wheel()


def built_requirements(tmp_path):
    """Requires-Dist of the metadata `pip install -e .` would install, built from this checkout's pyproject."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    (src / "autoft").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    (src / "autoft" / "__init__.py").write_text("")
    (tmp_path / "meta").mkdir()
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.prepare_metadata_for_build_editable(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "meta")], cwd=src, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    info = tmp_path / "meta" / out.stdout.strip().splitlines()[-1]
    lines = (info / "METADATA").read_text().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]


def test_editable_install_metadata_requires_no_paddle(tmp_path):
    requires = built_requirements(tmp_path)
    assert any(r.startswith("numpy") for r in requires), requires  # the metadata was really read
    unconditional = [r for r in requires if "extra ==" not in r]
    assert not [r for r in unconditional if PADDLE_NAMES.match(r)], unconditional
    cpu_extra = [r for r in requires if 'extra == "cpu"' in r]
    assert cpu_extra and all(r.startswith("paddlepaddle>=2.6") for r in cpu_extra), requires


def test_requirements_files_name_no_paddle_wheel():
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-bench.txt"):
        lines = [ln.split("#", 1)[0].strip() for ln in (ROOT / name).read_text().splitlines()]
        assert not [ln for ln in lines if PADDLE_NAMES.match(ln)], name
    text = (ROOT / "requirements.txt").read_text()
    assert "pip install paddlepaddle-gpu==2.6.2" in text and "packages/stable/cu126/" in text


@pytest.mark.parametrize("installed, gpu", [({"paddlepaddle-gpu": "2.6.2"}, False),
                                            ({"paddlepaddle-gpu": "3.2.0"}, True)])
def test_an_installed_gpu_wheel_is_kept(installed, gpu):
    actions, note = pw.plan(installed, gpu, {"PADDLE": "paddlepaddle==2.6.2"})
    assert actions == [] and "keeping the installed paddlepaddle-gpu" in note


def test_cpu_mode_installs_the_cpu_wheel_only_when_needed():
    assert pw.plan({}, False, {})[0] == [["install", "paddlepaddle>=2.6"]]
    assert pw.plan({"paddlepaddle": "2.5.2"}, False, {})[0] == [["install", "paddlepaddle>=2.6"]]
    assert pw.plan({"paddlepaddle": "3.3.1"}, False, {}) == ([], "")
    pinned = {"PADDLE": "paddlepaddle==2.6.2"}  # CI's oldest-Paddle venv
    assert pw.plan({"paddlepaddle": "3.3.1"}, False, pinned)[0] == [["install", "paddlepaddle==2.6.2"]]
    assert pw.plan({"paddlepaddle": "2.6.2"}, False, pinned) == ([], "")


def test_gpu_mode_replaces_a_cpu_wheel_with_the_gpu_one():
    actions, note = pw.plan({"paddlepaddle": "3.3.1"}, True, {})
    assert actions == [["uninstall", "paddlepaddle"],
                       ["install", "paddlepaddle-gpu>=3.0,<3.4", "-i",
                        "https://www.paddlepaddle.org.cn/packages/stable/cu126/"]]
    assert pw.plan({}, True, {"PADDLE_CUDA": "cu118"})[0][-1][-1].endswith("/stable/cu118/")
    actions, note = pw.plan({}, True, {"PADDLE_GPU_WHEEL": "pypi"})
    assert actions == [["install", "paddlepaddle-gpu==2.6.2"]] and "CUDA 12" in note
    both = pw.plan({"paddlepaddle": "3.3.1", "paddlepaddle-gpu": "3.2.0"}, True, {})[0]
    assert both[0] == ["uninstall", "paddlepaddle", "paddlepaddle-gpu"]


def test_the_script_reads_the_installed_wheels(tmp_path):
    # A paddlepaddle-gpu distribution (its metadata is all that is read) next to this venv's CPU wheel.
    info = tmp_path / "paddlepaddle_gpu-2.6.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paddlepaddle-gpu\nVersion: 2.6.2\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    script = str(ROOT / "scripts" / "paddle_wheel.py")
    with_gpu = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
    assert with_gpu.returncode == 0 and with_gpu.stdout == ""
    assert "keeping the installed paddlepaddle-gpu 2.6.2" in with_gpu.stderr
    bad = subprocess.run([sys.executable, script, "--cpu"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_setup_sh_runs_the_plan_and_silences_only_the_editable_box():
    # The shell side of the decision: setup.sh executes paddle_wheel.py's plan, never a wheel of its own.
    text = (ROOT / "scripts" / "setup.sh").read_text()
    assert "paddlepaddle" not in re.sub(r"#.*", "", text).replace("paddle_wheel.py", "")
    assert 'PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q --no-deps -e .' in text
