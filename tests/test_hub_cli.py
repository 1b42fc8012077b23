"""`hub <other sub-command>` goes to PaddleHub when paddlehub imports; otherwise the name clash is
explained. PaddleHub is faked by a package (with and without pip's metadata) written by each test."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_EXECUTE = """
import json, os, sys


def execute():
    with open(os.environ["FAKE_HUB_RECORD"], "w") as f:
        json.dump({"entry": "%s", "argv": sys.argv}, f)
    return 3
"""


def write_fake_paddlehub(root: Path, with_metadata: bool, broken: bool = False) -> Path:
    """paddlehub/commands/utils.py:execute records its argv; with_metadata adds pip's dist-info with the
    console script `hub = paddlehub.commands.hub:main` (PaddleHub 1.x's name), so the two paths differ."""
    pkg = root / "paddlehub"
    (pkg / "commands").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import paddle_is_missing_here\n" if broken else "")
    (pkg / "commands" / "__init__.py").write_text("")
    (pkg / "commands" / "utils.py").write_text(FAKE_EXECUTE % "utils.execute")
    (pkg / "commands" / "hub.py").write_text((FAKE_EXECUTE % "hub.main").replace("def execute", "def main"))
    if with_metadata:
        info = root / "paddlehub-2.4.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paddlehub\nVersion: 2.4.0\n")
        (info / "entry_points.txt").write_text("[console_scripts]\nhub = paddlehub.commands.hub:main\n")
    return root


def run_hub(args, tmp_path, pythonpath=None):
    env = dict(os.environ, FAKE_HUB_RECORD=str(tmp_path / "record.json"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath and str(pythonpath), str(ROOT)) if p)
    code = "import sys; from autoft.tuner.cli import hub_main; sys.argv[0] = 'hub'; hub_main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("with_metadata, entry", [(True, "hub.main"), (False, "utils.execute")])
def test_other_subcommands_go_to_paddlehub_with_the_same_argv(tmp_path, with_metadata, entry):
    fake = write_fake_paddlehub(tmp_path / "site", with_metadata)
    proc = run_hub(["install", "ernie", "--version=1.0"], tmp_path, fake)
    assert proc.returncode == 3, proc.stderr  # PaddleHub's exit status
    record = json.loads((tmp_path / "record.json").read_text())
    assert record == {"entry": entry, "argv": ["hub", "install", "ernie", "--version=1.0"]}
    helped = run_hub(["help"], tmp_path, fake)
    assert helped.returncode == 3 and json.loads((tmp_path / "record.json").read_text())["argv"] == ["hub", "help"]


def test_autofinetune_stays_autofts_even_with_paddlehub(tmp_path):
    fake = write_fake_paddlehub(tmp_path / "site", True)
    proc = run_hub(["autofinetune", "-h"], tmp_path, fake)
    assert proc.returncode == 0 and "--param_file" in proc.stdout
    assert not (tmp_path / "record.json").exists()


def test_without_paddlehub_the_clash_is_explained(tmp_path):
    proc = run_hub(["serving", "start"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "found `hub serving start`, and paddlehub is not installed" in proc.stderr
    assert "pip install paddlehub" in proc.stderr and "autofinetune ..." in proc.stderr
    assert run_hub(["help"], tmp_path).stdout.startswith("usage: hub autofinetune")


def test_a_paddlehub_that_does_not_import_is_named(tmp_path):
    fake = write_fake_paddlehub(tmp_path / "site", False, broken=True)
    proc = run_hub(["install", "ernie"], tmp_path, fake)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "paddlehub is installed but does not import" in proc.stderr and "paddle_is_missing_here" in proc.stderr
