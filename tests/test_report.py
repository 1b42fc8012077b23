"""The trial-to-tuner protocol: final and intermediate results through the trial's environment."""

import math
import subprocess
import sys

import pytest

from autoft import report
from autoft.errors import ArgumentParser


def _trial_env(monkeypatch, tmp_path, trial_id="3"):
    monkeypatch.setenv(report.TRIAL_ID_ENV, trial_id)
    monkeypatch.setenv(report.RESULT_FILE_ENV, str(tmp_path / "result"))
    monkeypatch.setenv(report.INTERMEDIATE_FILE_ENV, str(tmp_path / "intermediate"))


def test_intermediate_results_are_appended_per_trial_and_read_back_in_order(monkeypatch, tmp_path):
    _trial_env(monkeypatch, tmp_path, "3")
    report.report_intermediate_result(0.5, 10)
    report.report_intermediate_result(0.625, 20)
    monkeypatch.setenv(report.TRIAL_ID_ENV, "4")
    report.report_intermediate_result(0.9, 10)
    path = tmp_path / "intermediate"
    assert report.read_intermediate(path, "3") == [(10, 0.5), (20, 0.625)]
    assert report.read_intermediate(path, "4") == [(10, 0.9)]
    assert report.read_intermediate(tmp_path / "missing", "3") == []


def test_a_torn_intermediate_line_is_skipped(monkeypatch, tmp_path):
    _trial_env(monkeypatch, tmp_path)
    report.report_intermediate_result(0.5, 1)
    with open(tmp_path / "intermediate", "a") as f:
        f.write("3\t2\t0.7")  # killed before the newline: parsed, it is a complete line
        f.write("\n3\t")  # killed mid-line
    assert report.read_intermediate(tmp_path / "intermediate", "3") == [(1, 0.5), (2, 0.7)]


@pytest.mark.parametrize("bad", [math.nan, math.inf, "x"])
def test_a_non_finite_intermediate_score_is_refused(monkeypatch, tmp_path, bad):
    _trial_env(monkeypatch, tmp_path)
    with pytest.raises(ValueError):
        report.report_intermediate_result(bad, 1)
    assert not (tmp_path / "intermediate").exists()


def test_intermediate_results_outside_a_trial_write_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(report.TRIAL_ID_ENV, raising=False)
    monkeypatch.delenv(report.INTERMEDIATE_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    report.report_intermediate_result(0.5, 1)
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().err == ""


def test_an_argparse_error_is_one_line_naming_help_and_exits_2(capsys):
    p = ArgumentParser(prog="tool.py")
    p.add_argument("--epochs", type=int, default=3, help="passes over the train split")
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--epochs", "x"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and "--epochs" in err and "see tool.py --help" in err
    assert "--debug" in p.format_help() and "default: 3" in p.format_help()


def test_a_user_error_exits_2_with_and_without_debug():
    code = ("import sys; from autoft.errors import AutoftError, run_cli\n"
            "def main(argv): raise AutoftError('bad input')\n"
            "sys.exit(run_cli(main))")
    for extra in ([], ["--debug"]):
        r = subprocess.run([sys.executable, "-c", code, *extra], capture_output=True, text=True)
        assert r.returncode == 2 and "error: bad input" in r.stderr
        assert ("Traceback" in r.stderr) == bool(extra)
