"""Help, exit codes and quiet output of `autoft`, `autoft data`, `autoft convert` and predict.py."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoft import errors

ROOT = Path(__file__).resolve().parents[1]


def _autoft(*args, home=None):
    env = dict(os.environ)
    if home is not None:
        env["AUTOFT_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "autoft.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=180, cwd=ROOT)


def _parsers(monkeypatch, module, call):
    """Every ArgumentParser ``call`` builds in ``module`` (sub-command parsers included)."""
    made = []

    class Recording(errors.ArgumentParser):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(module, "ArgumentParser", Recording)
    with pytest.raises(SystemExit) as exc:
        call()
    assert exc.value.code == 0
    return made


def _cli_parsers(monkeypatch):
    import autoft.cli
    import autoft.convert
    import autoft.data.cli
    import autoft.doctor
    import autoft.predict

    return {
        "autoft": _parsers(monkeypatch, autoft.cli, lambda: autoft.cli.build_parser().parse_args(["--help"])),
        "autoft data": _parsers(monkeypatch, autoft.data.cli, lambda: autoft.data.cli._parser().parse_args(["-h"])),
        "autoft convert": _parsers(monkeypatch, autoft.convert, lambda: autoft.convert.cli(["--help"])),
        "autoft doctor": _parsers(monkeypatch, autoft.doctor, lambda: autoft.doctor.cli(["--help"])),
        "predict.py": _parsers(monkeypatch, autoft.predict, lambda: autoft.predict.build_parser().parse_args(["-h"])),
    }


def test_every_flag_has_a_help_line_with_its_default(monkeypatch, capsys):
    parsers = _cli_parsers(monkeypatch)
    assert len(parsers["autoft data"]) == 4  # the command parser and demo, check, check-submission
    for made in parsers.values():
        for parser in made:
            text = parser.format_help()
            assert "--debug" in text, parser.prog
            for action in parser._actions:
                if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                    continue
                where = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
                assert action.help and len(action.help) > 8, where
                if action.required or not action.option_strings:
                    continue
                if action.default is None:  # the help says what leaving it unset does
                    assert re.search(r"\((default|unset): ", action.help), where
                elif action.default is not argparse.SUPPRESS and not isinstance(action, argparse._VersionAction):
                    shown = " ".join(parser._get_formatter()._get_help_string(action).split())
                    assert "(default: %(default)s)" in shown, where


def test_autoft_alone_and_data_alone_list_their_commands():
    top = _autoft()
    assert top.returncode == 0 and all(c in top.stdout for c in ("convert", "data", "autofinetune", "--debug"))
    data = _autoft("data")
    assert data.returncode == 0 and "required" not in data.stdout + data.stderr
    for command in ("demo", "check", "check-submission", "--debug"):
        assert command in data.stdout
    for args, prog in ((["nope"], "autoft"), (["data", "chek"], "autoft data"), (["data", "check"], "autoft data check")):
        bad = _autoft(*args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and f"(see {prog} --help)" in bad.stderr, bad.stderr


def _documented_exit_codes():
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    section = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.M)}


def test_docs_and_autoft_data_agree_on_every_exit_code(tmp_path):
    documented = _documented_exit_codes()
    assert sorted(documented) == [0, 1, 2]
    good, partial, bad = tmp_path / "good", tmp_path / "partial", tmp_path / "bad"
    for d in (good, partial, bad):
        d.mkdir()
        (d / "train.tsv").write_text("pos\t好\nneg\t差\n", encoding="utf-8")
        (d / "dev.tsv").write_text("pos\t好\n", encoding="utf-8")
    for d in (good, bad):
        (d / "test.tsv").write_text("id\ttext_a\nq1\t还行\n", encoding="utf-8")
    (bad / "dev.tsv").write_text("pos\t好\nneg\n", encoding="utf-8")
    (tmp_path / "custom_predict.txt").write_text("pos\nneg\n", encoding="utf-8")  # 2 labels, 1 test example
    check = ["data", "check", "--dataset", "custom", "--data_dir"]
    cases = [
        (check + [good], 0, "every split present and valid"),
        (check + [partial], 1, "one split file"),
        (check + [tmp_path / "nowhere"], 1, "the directory itself"),
        (["data", "check-submission", "--dataset", "custom", "--data_dir", tmp_path / "nowhere",
          tmp_path / "custom_predict.txt"], 1, "missing"),
        (check + [bad], 2, "malformed file"),
        (["data", "check-submission", "--dataset", "custom", "--data_dir", good, tmp_path / "custom_predict.txt"],
         2, "does not match the test split"),
        (check + [good, "--max_seq_len", "x"], 2, "bad flag"),
        (check + [good, "--max_seq_len", "2"], 2, "bad flag"),
    ]
    for args, code, phrase in cases:
        result = _autoft(*args)
        assert result.returncode == code, (args, result.stdout[-500:], result.stderr[-500:])
        assert phrase in documented[code], (code, phrase)
        assert "Traceback" not in result.stderr
    malformed = _autoft(*check, bad, "--debug")
    assert malformed.returncode == 2 and f"{bad / 'dev.tsv'}:2:" in malformed.stderr and "Traceback" in malformed.stderr


def test_convert_prints_no_paddle_thread_banner(tmp_path):
    from autoft.checkpoint import save_pretrained
    from autoft.model import BertConfig, BertModel

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n好\n", encoding="utf-8")
    config = BertConfig(vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    src = save_pretrained(BertModel(config), tmp_path / "src", vocab)
    env_threads = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-m", "autoft.cli", "convert", str(src), str(tmp_path / "dst")],
                            capture_output=True, text=True, env=env_threads, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "OMP_NUM_THREADS" not in result.stderr and "ccache" not in result.stderr, result.stderr
    assert f"wrote {tmp_path / 'dst'}" in result.stdout
