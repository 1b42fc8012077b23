"""The tuner core's seam for watching and stopping running trials (what a pruner plugs into),
in-process on both backends: a TrialWatcher sees running trials with their intermediate results,
stops one, and the stopped trial is recorded PRUNED with its last intermediate (step, score),
its process group is gone, and its slot starts the round's next trial at once."""

import json
from pathlib import Path

import pytest

from autoft.tuner.devices import plan_slots
from autoft.tuner.records import PRUNED
from autoft.tuner.search_loop import SearchConfig, run_search
from tests.test_tuner_cli import ROOT, SPACE_YAML
from tests.test_tuner_search import alive, read_journal

RESUMABLE = ROOT / "tests" / "toy" / "resumable.py"


class StopTrialOne:
    """Stops trial 1 once it has reported an intermediate result; opens the gate that holds trial 0
    once trial 2 runs (so trial 0 only ends if the freed slot started trial 2 while it ran)."""

    def __init__(self, gate: Path):
        self.gate = gate
        self.ticks = []
        self.finished = []

    def on_tick(self, running, stop_trial):
        self.ticks.append([(r.number, list(r.intermediate)) for r in running])
        for r in running:
            assert r.started > 0 and r.spec.number == r.number
            if r.number == 1 and r.intermediate:
                step, score = r.intermediate[-1]
                assert stop_trial(1, PRUNED, f"test watcher: stopped at step {step}")
            if r.number == 2:
                self.gate.write_text("open")

    def trial_finished(self, record):
        self.finished.append((record.trial, record.status))


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_watcher_stops_a_running_trial_which_is_pruned_and_frees_its_slot(tmp_path, monkeypatch, backend):
    if backend == "ray":
        pytest.importorskip("ray", reason="--backend ray needs the optional ray package")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    gate, rec = tmp_path / "gate", tmp_path / "rec"
    watcher = StopTrialOne(gate)
    options = [f"--record_dir={rec}", "--steps=40", "--step_sleep=0.25", "--block_at_step=1", "--block_tag=r0i0",
               f"--gate={gate}"]
    cfg = SearchConfig(script=str(RESUMABLE), param_file="hp.yaml", popsize=3, rounds=1, output_dir=Path("out"),
                       evaluator="fulltrail", tuning_strategy="pshe2", options=options,
                       slots=plan_slots(None, 2) if backend == "local" else [], seed=5, backend=backend,
                       cpu_slots=2, watcher=watcher, tick_seconds=0.05)
    try:
        assert run_search(cfg) == 0
    finally:
        gate.write_text("open")
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    by = {t["trial"]: t for t in trials}
    assert by[1]["status"] == PRUNED and by[1]["score"] is None
    assert by[1]["reason"].startswith("test watcher: stopped at step ")
    assert by[1]["last_step"] >= 1 and by[1]["last_step"] < 40 and by[1]["last_score"] is not None
    assert by[0]["status"] == by[2]["status"] == "OK"
    assert sorted(watcher.finished) == [(0, "OK"), (1, PRUNED), (2, "OK")]
    # Trial 1 stopped long before its 40 steps: its steps file ends early.
    assert len((rec / "r0i1-steps.txt").read_text().split()) < 40
    seen = {n for tick in watcher.ticks for n, _ in tick}
    assert seen == {0, 1, 2}
    # Each trial's own intermediate file in its round dir.
    assert (tmp_path / "out" / "round0" / "intermediate-1.txt").read_text().count("\t") >= 2
    for p in Path("/proc").iterdir():  # no trial process is left
        if p.name.isdigit():
            assert not alive(int(p.name), str((tmp_path / "out" / "round0").resolve()))
    assert json.loads(json.dumps(by[1]))  # the record is plain JSON
