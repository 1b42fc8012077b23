"""Small pieces of the tuner in-process: the journal's crash tolerance and the best-model copy."""

import json

import pytest

from autoft.errors import AutoftError
from autoft.tuner import output
from autoft.tuner.journal import Journal, read
from autoft.tuner.records import TrialRecord

HEADER = {"script": "train.py", "space": [{"name": "x"}], "popsize": 2, "evaluator": "fulltrail",
          "tuning_strategy": "pshe2", "seed": 3, "options": ["--dataset=demo"]}


def trial(t, score=0.5, status="OK", model_dir="m"):
    return {"round": t // 2, "idx": t % 2, "trial": t, "point": [0.0], "hparams": {"x": 1.0}, "score": score,
            "status": status, "reason": "", "seconds": 1.0, "log": "l", "model_dir": str(model_dir)}


def test_a_torn_last_line_is_dropped_and_cut_off_before_appending(tmp_path):
    path = tmp_path / "journal.jsonl"
    j = Journal.create(path, HEADER)
    j.append(trial(0))
    with open(path, "a") as f:
        f.write('{"type": "trial", "round": 0, "id')  # kill -9 in the middle of a write
    header, trials, _ = read(path)
    assert header["seed"] == 3 and [t["trial"] for t in trials] == [0]
    j2, stored, trials = Journal.resume(path, dict(HEADER))
    j2.append(trial(1))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(x) for x in lines)
    assert [t["trial"] for t in read(path)[1]] == [0, 1]


def test_resume_refuses_a_different_search_and_names_the_differences(tmp_path):
    path = tmp_path / "journal.jsonl"
    Journal.create(path, HEADER)
    with pytest.raises(AutoftError, match=r"popsize: journal 2, now 4.*options: journal"):
        Journal.resume(path, {**HEADER, "popsize": 4, "options": []})
    # No --seed on the resumed command: the journaled seed is used, not a mismatch.
    Journal.resume(path, {**HEADER, "seed": None})
    with pytest.raises(AutoftError, match="does not exist"):
        Journal.resume(tmp_path / "nope.jsonl", HEADER)


def test_best_model_copy_reports_a_best_trial_that_saved_nothing(tmp_path):
    empty = tmp_path / "round0" / "model-1"
    empty.mkdir(parents=True)
    full = tmp_path / "round0" / "model-0"
    full.mkdir()
    (full / "w.bin").write_bytes(b"123")
    records = [TrialRecord.from_json(d) for d in
               (trial(0, 0.4, model_dir=full), trial(1, 0.9, model_dir=empty), trial(2, None, "FAILED"))]
    best = output.best_record(records)
    assert best.trial == 1
    note = output.copy_best_model(best, tmp_path)
    assert "saved nothing" in note and not (tmp_path / "best_model").exists()
    note = output.copy_best_model(records[0], tmp_path)
    assert (tmp_path / "best_model" / "w.bin").read_bytes() == b"123" and "best_model" in note
    assert output.copy_best_model(None, tmp_path).startswith("No best model")


def test_best_model_copy_says_why_a_model_on_another_node_is_unavailable(tmp_path):
    # A Ray trial that ran on another node without a shared output_dir: its model dir is not here.
    rec = TrialRecord.from_json(trial(0, 0.8, model_dir=tmp_path / "round0" / "model-0"))
    rec.note = "its --saved_params_dir ... is not on this machine (the trial ran on ray:node2/cpu1)"
    note = output.copy_best_model(rec, tmp_path)
    assert note.startswith("No best model (unavailable)") and "ray:node2" in note
    assert not (tmp_path / "best_model").exists()


def test_visualdl_log_writes_numeric_hparams_and_skips_a_string_choice(tmp_path):
    pytest.importorskip("visualdl")
    from visualdl import LogReader

    from autoft.tuner.records import TrialRecord

    recs = [TrialRecord(round=0, idx=i, trial=i, point=[0.0, 0.0], hparams={"lr": 1e-3 * (i + 1), "sched": "cosine"},
                        status="OK", score=0.5 + i / 10) for i in range(2)]
    vis = tmp_path / "visualization"
    assert output.write_visualdl(vis, ["lr", "sched"], recs, popsize=2) is None
    files = sorted(vis.glob("vdlrecords.*"))
    assert files and (vis / "pop_1").is_dir()
    tags = LogReader(file_path=str(files[0])).get_tags()["scalar"]
    assert "hyperparameter_tuning/lr" in tags and "hyperparameter_tuning/best_eval_value" in tags
    assert not any(t.endswith("/sched") for t in tags)
