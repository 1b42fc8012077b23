"""--pruner and --retries end to end: the real `autofinetune` CLI in a subprocess runs tests/toy/curves.py,
whose trials play learning curves the test chose (keyed by round/trial, whatever the hyper-parameters).

With one slot the trials run one after the other, so the pruner sees the reports in trial order and
its decisions are known in advance. A trial the rule must stop holds (sleeps) right after the report
that condemns it, so only the tuner can end it; the others run to their end. Nothing is timed: the
tests wait for journal lines and start records, with generous deadlines."""

import csv
import json
import os
import signal

import pytest

from autoft.tuner.pruners import PrunerConfig, make_pruner
from tests.test_tuner_cli import ROOT, run_cli
from tests.test_tuner_search import alive, journaled, start_tuner, wait_for

CURVES_TOY = ROOT / "tests" / "toy" / "curves.py"
SPACE = """param_list:
- name: x
  init_value: 0.5
  type: float
  greater_than: 0.0
  lower_than: 1.0
- name: n
  init_value: 3
  type: int
  greater_than: 1
  lower_than: 9
"""
# Round 0, one slot. r0i4 reports nothing intermediate (a third-party script): never pruned.
MEDIAN_CURVES = {
    "r0i0": [[10, 0.50], [20, 0.60], [30, 0.70]],
    "r0i1": [[10, 0.60], [20, 0.70], [30, 0.80]],
    "r0i2": [[10, 0.20], [20, 0.30], [30, 0.40]],  # step 10: 0.2 < median(0.5, 0.6) -> PRUNED
    "r0i3": [[10, 0.55], [20, 0.56], [30, 0.90]],  # 10: 0.55 >= median(.5,.6,.2)=.5; 20: 0.56 < median(.6,.7)
    "r0i5": [[10, 0.70], [20, 0.80], [30, 0.95]],
}
MEDIAN_PRUNED = {"r0i2": (10, 0.20), "r0i3": (20, 0.56)}
# asha, grace 10, eta 2 (rungs 10, 20, 40), min_trials 2: a trial goes on when its best so far is at
# least the median of the values recorded at the rung so far (itself included).
ASHA_CURVES = {
    "r0i0": [[10, 0.50], [20, 0.60], [40, 0.80]],
    "r0i1": [[10, 0.60], [20, 0.70], [40, 0.90]],
    "r0i2": [[10, 0.30], [20, 0.90], [40, 0.99]],  # rung 10: median(.5,.6,.3)=.5 > .3 -> PRUNED
    "r0i3": [[10, 0.56], [20, 0.57], [40, 0.99]],  # rung 10: .56 >= .53; rung 20: .57 < median(.6,.7,.57)
    "r0i5": [[10, 0.80], [20, 0.85], [40, 0.92]],
}
ASHA_PRUNED = {"r0i2": (10, 0.30), "r0i3": (20, 0.57)}


def tag(t):
    return f"r{t['round']}i{t['idx']}"


def hold_at(pruned):
    return ",".join(f"{k}@{step}" for k, (step, _) in pruned.items())


def setup(tmp_path, curves):
    (tmp_path / "hp.yaml").write_text(SPACE)
    (tmp_path / "curves.json").write_text(json.dumps(curves))


def search_args(*flags, popsize=6, rounds=1, extra=()):
    return [CURVES_TOY, "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "1",
            "--popsize", str(popsize), "--round", str(rounds), "--tuning_strategy", "random", "--seed", "3",
            "--evaluator", "fulltrail", *flags, "curves_file", "curves.json", "attempts_dir", "attempts", *extra]


def fake_one_gpu(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: Fake (UUID: GPU-a)'\n")
    smi.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def journal(out):
    return [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]


def trials_of(out):
    return {tag(t): t for t in journal(out) if t["type"] == "trial"}


def attempts(tmp_path):
    """tag -> how many times the toy started for it."""
    counts = {}
    for p in (tmp_path / "attempts").iterdir():
        t = p.name.split(".")[0]
        counts[t] = counts.get(t, 0) + 1
    return counts


def replay_pruner(config, trials):
    """The pure pruner fed the journaled curves in trial order (one slot): the trials it stops."""
    pruner, stopped = make_pruner(config), {}
    for t in sorted(trials.values(), key=lambda t: t["trial"]):
        for step, score in t.get("intermediate", []):
            if pruner.report(t["trial"], step, score):
                stopped[tag(t)] = step
                break
    return stopped


MEDIAN = (["--pruner", "median", "--prune_min_trials", "2"], MEDIAN_CURVES, MEDIAN_PRUNED,
          PrunerConfig("median", min_trials=2))
ASHA = (["--pruner", "asha", "--prune_grace", "10", "--prune_eta", "2", "--prune_min_trials", "2"], ASHA_CURVES,
        ASHA_PRUNED, PrunerConfig("asha", grace=10, eta=2, min_trials=2))


@pytest.mark.parametrize("flags, curves, pruned, config, where", [
    (*MEDIAN, []), (*ASHA, []), (*MEDIAN, ["--backend", "ray"]), (*ASHA, ["--evaluator", "populationbased"]),
    (*MEDIAN, ["--gpu", "0"]),
], ids=["median", "asha", "median-ray", "asha-populationbased", "median-gpu-slot"])
def test_the_pruner_stops_exactly_the_trials_its_rule_names(tmp_path, flags, curves, pruned, config, where):
    if "ray" in where:
        pytest.importorskip("ray", reason="--backend ray needs the optional ray package (pip install 'autoft[ray]')")
    setup(tmp_path, curves)
    args = search_args(*flags, *where, extra=["hold_at", hold_at(pruned)])
    env = None
    if "--gpu" in where:  # one GPU slot: a stand-in nvidia-smi lists one GPU, trials get CUDA_VISIBLE_DEVICES=0
        i = args.index("--cpu_slots")
        del args[i:i + 2]
        env = fake_one_gpu(tmp_path)
    proc = run_cli(args, tmp_path, env=env, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    trials = trials_of(out)
    assert {k for k, t in trials.items() if t["status"] == "PRUNED"} == set(pruned)
    assert all(t["status"] == "OK" for k, t in trials.items() if k not in pruned)  # r0i4 reported nothing
    for k, (step, score) in pruned.items():
        t = trials[k]
        assert (t["last_step"], t["last_score"]) == (step, score) and t["score"] is None
        assert f"at step {step}" in t["reason"] and [p[0] for p in t["intermediate"]][-1] == step
    assert "intermediate" not in trials["r0i4"] and trials["r0i4"]["score"] == 0.5
    assert replay_pruner(config, trials) == {k: s for k, (s, _) in pruned.items()}
    assert all(t["slot"] == ("gpu0" if "--gpu" in where else t["slot"]) for t in trials.values())
    assert journal(out)[0]["pruner"]["kind"] == config.kind
    with open(out / "trials.csv", newline="") as f:
        rows = {f"r{r['round']}i{r['trial']}": r for r in csv.DictReader(f)}
    assert {k for k, r in rows.items() if r["status"] == "PRUNED"} == set(pruned)
    assert "6 trials: 4 OK, 0 FAILED, 2 PRUNED." in proc.stdout
    assert "round 0 trial 2: PRUNED, pruned" in proc.stdout
    assert "waits for the tuner" not in proc.stdout  # a PRUNED line shows no log line: it ended on our signal
    assert "Pruned trials (2," in (out / "log_file.txt").read_text()
    assert attempts(tmp_path) == {f"r0i{i}": 1 for i in range(6)}  # pruned trials are not retried


def test_pruned_decisions_survive_kill_9_and_resume(tmp_path):
    curves = {**MEDIAN_CURVES, "r0i4": [[10, 0.10], [20, 0.2]]}  # step 10: 0.1 < median -> PRUNED
    expected = {**MEDIAN_PRUNED, "r0i4": (10, 0.10)}
    setup(tmp_path, curves)
    args = search_args("--pruner", "median", "--prune_min_trials", "2", extra=["hold_at", hold_at(expected)])
    log = open(tmp_path / "tuner.log", "w")
    tuner = start_tuner(args, tmp_path, stdout=log, stderr=log)
    try:
        out = tmp_path / "out"
        # r0i3 journaled as PRUNED and r0i4 started (then held at step 10): kill the tuner there.
        wait_for(lambda: journaled(out / "journal.jsonl") >= 4 and (tmp_path / "attempts" / "r0i4.1").exists(),
                 "four journaled trials and r0i4 running", timeout=300)
        before = trials_of(out)
        tuner.send_signal(signal.SIGKILL)
        tuner.wait()
        proc = run_cli(args[:1] + ["--resume"] + args[1:], tmp_path, timeout=400)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        if tuner.poll() is None:
            tuner.kill()
        log.close()
    trials = trials_of(out)
    assert len([x for x in journal(out) if x["type"] == "trial"]) == 6  # each trial journaled once
    assert {k: t["status"] for k, t in before.items()} == {k: trials[k]["status"] for k in before}
    assert {k for k, t in trials.items() if t["status"] == "PRUNED"} == set(expected)
    assert (trials["r0i4"]["last_step"], trials["r0i4"]["last_score"]) == (10, 0.10)
    runs = attempts(tmp_path)
    assert runs["r0i2"] == runs["r0i3"] == 1  # journaled PRUNED trials are not run again
    assert runs["r0i4"] == 2  # the one running at the kill ran again and was pruned again
    pid = int((tmp_path / "attempts" / "r0i4.1").read_text())
    assert not alive(pid, "curves.py")  # the orphan of the killed tuner is gone


def test_retries_rerun_crashes_a_bounded_number_of_times_and_keep_every_log(tmp_path):
    setup(tmp_path, {})
    proc = run_cli(search_args("--retries", "2", popsize=5,
                               extra=["crash_attempts", "r0i1:2,r0i2:9", "oom_at", "r0i3", "usage_at", "r0i4"]),
                   tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    trials = trials_of(out)
    assert attempts(tmp_path) == {"r0i0": 1, "r0i1": 3, "r0i2": 3, "r0i3": 1, "r0i4": 1}
    assert trials["r0i1"]["status"] == "OK" and trials["r0i1"]["attempts"] == 3
    assert trials["r0i2"]["status"] == "FAILED" and "2 retries used" in trials["r0i2"]["reason"]
    assert trials["r0i3"]["reason"] == "out of GPU memory" and "attempts" not in trials["r0i3"]  # not retried
    assert "usage error" in trials["r0i4"]["reason"]
    # Retries run once the batch they failed in has finished: attempt 2 of both, then attempt 3 of both.
    assert [(x["trial"], x["attempt"]) for x in journal(out) if x["type"] == "attempt"] == [(1, 1), (2, 1), (1, 2),
                                                                                           (2, 2)]
    logs = sorted(p.name for p in (out / "round0").glob("log-[12]*.info"))
    assert logs == ["log-1.attempt2.info", "log-1.attempt3.info", "log-1.info", "log-2.attempt2.info",
                    "log-2.attempt3.info", "log-2.info"]
    assert "attempt 2 of r0i1 crashes" in (out / "round0" / "log-1.attempt2.info").read_text()
    assert trials["r0i1"]["log"].endswith("log-1.attempt3.info")
    assert "round 0 trial 1: attempt 1 FAILED" in proc.stdout and "retry 1 of 2" in proc.stdout


def test_a_resume_continues_the_attempt_count(tmp_path):
    # Attempt 1 of r0i0 crashes (journaled as retried); the tuner is killed while attempt 2 hangs.
    # The resumed search runs attempt 2 again, keeps attempt 1's log and counts it.
    setup(tmp_path, {"r0i0": [[10, 0.5]]})
    args = search_args("--retries", "3", popsize=1, extra=["crash_attempts", "r0i0:1", "hang_attempt", "r0i0:2"])
    log = open(tmp_path / "tuner.log", "w")
    tuner = start_tuner(args, tmp_path, stdout=log, stderr=log)
    try:
        wait_for(lambda: (tmp_path / "attempts" / "r0i0.2").exists(), "attempt 2 running", timeout=300)
        tuner.send_signal(signal.SIGKILL)
        tuner.wait()
        proc = run_cli(args[:1] + ["--resume"] + args[1:], tmp_path, timeout=400)
    finally:
        if tuner.poll() is None:
            tuner.kill()
        log.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    trial = trials_of(out)["r0i0"]
    assert trial["status"] == "OK" and trial["attempts"] == 2 and trial["log"].endswith("log-0.attempt2.info")
    assert [x["attempt"] for x in journal(out) if x["type"] == "attempt"] == [1]
    assert "attempt 1 of r0i0 crashes" in (out / "round0" / "log-0.info").read_text()  # kept across the resume
    assert attempts(tmp_path) == {"r0i0": 3}  # the toy's count: 1 crashed, 2 killed with the tuner, 2 again
