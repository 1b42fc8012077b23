"""scripts/demo.sh's search space and command, and the replayed-landscape machinery of the demo
benchmarks (benchmarks/demo_replay.py, benchmarks/replay_trial.py) through the real tuner CLI."""

import json
import re

from autoft.search.space import SearchSpace
from autoft.train_config import parse_args
from benchmarks import demo_replay as replay
from benchmarks.demo_landscape import grid, key
from tests.test_tuner_cli import ROOT


def test_demo_space_starts_at_train_py_defaults():
    space = SearchSpace.load(ROOT / "scripts" / "demo_hparam.yaml")
    defaults = parse_args(["--dataset", "demo"])
    assert {p.type for p in space.params} == {"choice"}  # a finite grid: the landscape covers it
    for p in space.params:
        assert p.init_value == getattr(defaults, p.name), p.name
    assert len(grid()) == 48


def test_demo_sh_runs_the_benchmarked_search():
    text = re.sub(r"\\\n\s*", " ", (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8"))
    line = next(x for x in text.splitlines() if x.lstrip().startswith("autofinetune train.py"))
    tokens = line.split()
    assert f"--tuning_strategy={replay.DEMO_STRATEGY}" in tokens
    assert f'--popsize="${{POPSIZE:-{replay.DEMO_POPSIZE}}}"' in tokens
    assert f'--round="${{ROUNDS:-{replay.DEMO_ROUNDS}}}"' in tokens
    assert " ".join(replay.DEMO_PRUNER) in line
    assert " ".join(replay.TRIAL_OPTIONS[2:]) in line  # the trailing trial options after `dataset demo`


SPACE = """param_list:
- name: learning_rate
  type: choice
  values: [0.001, 0.002]
  init_value: 0.001
- name: max_seq_len
  type: choice
  values: [64, 128]
  init_value: 64
"""


def point(lr, seq, curve, seconds, final=None, test=None):
    hp = {"learning_rate": lr, "max_seq_len": seq}
    status = "OK" if final is not None else "FAILED"
    return key(hp), {"hparams": hp, "status": status, "final": final, "test": test, "rc": 0 if final else 1,
                     "seconds": seconds, "curve": curve, "log_tail": "" if final else "loss diverged"}


def test_replayed_search_matches_the_landscape(tmp_path):
    points = dict([
        point(0.001, 64, [[10, 0.70, 2.0], [20, 0.75, 4.0]], 5.0, 0.75, 0.77),
        point(0.001, 128, [[10, 0.72, 3.0], [20, 0.81, 6.0]], 7.0, 0.81, 0.83),
        point(0.002, 64, [[10, 0.50, 2.0]], 3.0),  # a recorded failure
        point(0.002, 128, [[10, 0.60, 3.0], [20, 0.65, 6.0]], 7.0, 0.65, 0.66),
    ])
    landscape = tmp_path / "landscape.json"
    landscape.write_text(json.dumps({"points": points}))
    (tmp_path / "hp.yaml").write_text(SPACE)
    r = replay.run_search(tmp_path / "out", "auto", 5, [], 4, 2, 2, scale=0.02, landscape=landscape,
                          param_file=str(tmp_path / "hp.yaml"))
    trials = [json.loads(x) for x in (tmp_path / "out" / "journal.jsonl").read_text().splitlines()]
    trials = [t for t in trials if t.get("type") == "trial"]
    assert len(trials) == r["trials"] == 8
    # The space is a grid: the tuner hands auto SearchSpace.snap, so round 0 runs 4 different points.
    assert len({key(t["hparams"]) for t in trials if t["round"] == 0}) == 4
    for t in trials:
        p = points[key(t["hparams"])]
        assert t["status"] == p["status"]
        if p["status"] == "OK":
            assert t["score"] == p["final"]
            assert [s for s, _ in t["intermediate"]] == [c[0] for c in p["curve"]]
        else:
            assert "loss diverged" in t["log_tail"]
    ok = [points[key(t["hparams"])] for t in trials if t["status"] == "OK"]
    best = max(ok, key=lambda p: p["final"])
    assert (r["best"], r["test"]) == (best["final"], best["test"])
    assert r["failed"] == sum(t["status"] == "FAILED" for t in trials)
    assert r["seconds"] == sum(points[key(t["hparams"])]["seconds"] for t in trials)
    assert r["wall"] >= max(p["seconds"] for p in ok)  # replay wall / scale: never faster than one trial


def test_a_pruned_trial_costs_up_to_its_last_report():
    _, p = point(0.001, 128, [[10, 0.72, 3.0], [20, 0.81, 6.0], [30, 0.85, 9.0]], 10.0, 0.85)
    assert replay.trial_cost({"status": "PRUNED", "intermediate": [[10, 0.72], [20, 0.81]]}, p) == (20, 6.0)
    assert replay.trial_cost({"status": "PRUNED", "intermediate": []}, p) == (0, 0.0)
    assert replay.trial_cost({"status": "OK"}, p) == (30, 10.0)


def test_the_simulation_decides_as_the_tuner(tmp_path):
    """benchmarks/demo_sim.py against the real replayed tuner on one slot (reports in trial order in
    both) with reports 1.2 s apart when replayed (more than the tuner's 1 s tick, so it judges each
    before the trial ends): the same trials, statuses, prunes and costs."""
    from benchmarks import demo_sim

    points = dict([
        point(0.001, 64, [[10, 0.70, 40.0], [20, 0.75, 80.0], [30, 0.78, 120.0]], 122.0, 0.78, 0.77),
        point(0.001, 128, [[10, 0.72, 40.0], [20, 0.81, 80.0], [30, 0.84, 120.0]], 122.0, 0.84, 0.83),
        point(0.002, 64, [[10, 0.50, 40.0], [20, 0.52, 80.0], [30, 0.55, 120.0]], 122.0, 0.55, 0.56),
        point(0.002, 128, [[10, 0.60, 40.0], [20, 0.65, 80.0], [30, 0.66, 120.0]], 122.0, 0.66, 0.66),
    ])
    landscape = tmp_path / "landscape.json"
    landscape.write_text(json.dumps({"points": points}))
    (tmp_path / "hp.yaml").write_text(SPACE)
    flags = ["--pruner", "asha", "--prune_grace", "10", "--prune_eta", "2", "--prune_min_trials", "2",
             "--prune_max_step", "30"]
    real = replay.run_search(tmp_path / "out", "auto", 3, flags, 3, 2, 1, scale=0.03, landscape=landscape,
                             param_file=str(tmp_path / "hp.yaml"))
    sim = demo_sim.simulate("auto", 3, flags, 3, 2, 1, {"points": points}, tmp_path / "hp.yaml")
    trials = [json.loads(x) for x in (tmp_path / "out" / "journal.jsonl").read_text().splitlines()]
    trials = sorted((t for t in trials if t.get("type") == "trial"), key=lambda t: t["trial"])
    assert sim["statuses"] == [t["status"] for t in trials]
    assert "PRUNED" in sim["statuses"] and "OK" in sim["statuses"]  # the fixture exercises both
    for k in ("best", "test", "hparams", "pruned", "failed", "steps", "seconds", "trials"):
        assert sim[k] == real[k], k
