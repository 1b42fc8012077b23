"""The real `autofinetune` CLI with --tuning_strategy auto and a `type: choice` parameter: the value
reaches the trial as --name=value, and --resume replays auto's journal to the same next round."""

import json
from pathlib import Path

from tests.test_tuner_cli import TOY, run_cli

CHOICE_SPACE = """param_list:
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
  type: choice
  values: [10, 26, 40]
  init_value: 10
"""


def tune(tmp_path, out, rounds, *flags):
    (tmp_path / "hp.yaml").write_text(CHOICE_SPACE)
    proc = run_cli([TOY, "--param_file", "hp.yaml", "--output_dir", out, "--cpu_slots", "2", "--popsize", "3",
                    "--round", str(rounds), "--evaluator", "fulltrail", "--tuning_strategy", "auto", "--seed", "4",
                    *flags, "record_dir", tmp_path / f"rec-{out}"], tmp_path, timeout=300)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


def trials(path):
    lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
    return {(x["round"], x["idx"]): x for x in lines if x["type"] == "trial"}


def test_auto_with_a_choice_runs_and_resumes_by_replay(tmp_path):
    tune(tmp_path, "a", 2)
    argvs = [json.loads(p.read_text())["argv"] for p in (tmp_path / "rec-a").glob("*-start.json")]
    assert len(argvs) == 6
    n_flags = [[a for a in argv if a.startswith("--n=")] for argv in argvs]
    assert all(len(f) == 1 and f[0] in ("--n=10", "--n=26", "--n=40") for f in n_flags)
    first = trials(tmp_path / "a" / "journal.jsonl")
    assert first[(0, 0)]["hparams"] == {"x": 6.0, "y": -2.0, "n": 10}  # auto's trial 0 is the init value

    # Continue the finished 2-round search for a third round; a fresh 3-round search with the same
    # seed must ask exactly the same third round (the resumed strategy replayed the journal).
    tune(tmp_path, "a", 3, "--resume")
    tune(tmp_path, "b", 3)
    resumed, fresh = trials(tmp_path / "a" / "journal.jsonl"), trials(tmp_path / "b" / "journal.jsonl")
    assert len(resumed) == len(fresh) == 9
    for key in fresh:
        assert resumed[key]["hparams"] == fresh[key]["hparams"], key
    assert len(list((tmp_path / "rec-a").glob("*-start.json"))) == 9  # nothing re-run on resume


def test_resume_with_an_edited_choice_list_is_refused(tmp_path):
    tune(tmp_path, "c", 1)
    (tmp_path / "hp.yaml").write_text(CHOICE_SPACE.replace("[10, 26, 40]", "[10, 26, 64]"))
    proc = run_cli([TOY, "--param_file", "hp.yaml", "--output_dir", "c", "--cpu_slots", "2", "--popsize", "3",
                    "--round", "2", "--evaluator", "fulltrail", "--tuning_strategy", "auto", "--seed", "4",
                    "--resume", "record_dir", tmp_path / "rec-c"], tmp_path, timeout=300)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "different search" in proc.stderr and "space" in proc.stderr and "Traceback" not in proc.stderr
