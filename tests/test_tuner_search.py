"""End-to-end searches: the real `autofinetune` CLI in a subprocess runs tests/toy/quadratic.py
(a noisy quadratic of x, y, n with optimum score 1.0 at x=3, y=1.5, n=26) on CPU slots."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.test_tuner_cli import SPACE_YAML, TOY, run_cli

OPTIMUM = 1.0  # the toy's best score (noise is +-0.002)


def search(tmp_path, *flags, out="out", rec=None, extra=()):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    args = [TOY, "--param_file", "hp.yaml", "--output_dir", out, *flags]
    if rec is not None:
        args += ["record_dir", tmp_path / rec]
    args += list(extra)
    return run_cli(args, tmp_path, timeout=300)


def read_journal(path):
    lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
    assert lines[0]["type"] == "header"
    return lines[0], [x for x in lines[1:] if x["type"] == "trial"]


def starts(rec_dir):
    return [json.loads(p.read_text()) for p in Path(rec_dir).glob("*-start.json")]


def best_score(out_dir):
    return yaml.safe_load((out_dir / "best_hparams.yaml").read_text())["score"]


def test_hazero_fulltrail_finds_the_optimum_and_writes_every_output(tmp_path):
    proc = search(tmp_path, "--cpu_slots", "2", "--tuning_strategy", "hazero", "--evaluator", "fulltrail",
                  "--seed", "1", rec="rec", extra=["dataset", "TNEWS"])
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    # Default budget: popsize 5 x 10 rounds.
    _, trials = read_journal(out / "journal.jsonl")
    assert len(trials) == 50 and {(t["round"], t["idx"]) for t in trials} == {(k, i) for k in range(10) for i in range(5)}
    best = best_score(out)
    assert best >= 0.95 * OPTIMUM
    round0 = max(t["score"] for t in trials if t["round"] == 0)
    assert best > round0 + 0.3  # the search moved, the first round was not already there
    # fulltrail: never a warm start; trailing options forwarded; PaddleHub's argument order.
    for s in starts(tmp_path / "rec"):
        assert "--model_path" not in s["argv"] and "--epochs=1" not in s["argv"]
        assert s["argv"][0].startswith("--saved_params_dir=")
        assert s["argv"][-2:] == [f"--record_dir={tmp_path / 'rec'}", "--dataset=TNEWS"]
    # Outputs.
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 50 and {"round", "trial", "x", "y", "n", "score", "status", "seconds", "reason"} <= set(rows[0])
    assert max(float(r["score"]) for r in rows) == best
    log_file = (out / "log_file.txt").read_text()
    assert log_file.startswith("The final best hyperparameters:\nx\t:\t")
    assert f"The final best eval score is {best}." in log_file and "x\ty\tn\tsaved_params_dir" in log_file
    winner = json.loads((out / "best_model" / "model.json").read_text())
    assert winner["score"] == best
    assert (out / "search.png").stat().st_size > 10_000
    assert (out / "visualization" / "pop_4").is_dir()
    assert (out / "round9" / "log-4.info").is_file() and (out / "round9" / "model-4" / "model.json").is_file()
    assert "PaddleHub Autofinetune starts." in proc.stdout
    assert "The local best eval value in the 9-th round is" in proc.stdout
    assert "50 trials: 50 OK, 0 FAILED" in proc.stdout


def test_pshe2_populationbased_finds_the_optimum_and_warm_starts_from_the_best_half(tmp_path):
    proc = search(tmp_path, "--cpu_slots", "2", "--seed", "1", rec="rec")  # defaults: pshe2, populationbased
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    header, trials = read_journal(out / "journal.jsonl")
    assert (header["tuning_strategy"], header["evaluator"]) == ("pshe2", "populationbased")
    assert best_score(out) >= 0.95 * OPTIMUM
    by_tag = {s["tag"]: s["argv"] for s in starts(tmp_path / "rec")}
    assert len(by_tag) == 50
    for t in trials:
        argv = by_tag[f"r{t['round']}i{t['idx']}"]
        if t["round"] == 0:
            assert "--model_path" not in argv and "--epochs=1" not in argv
            continue
        # The best floor(5/2) = 2 trials of the previous round, in score order; trial number t picks t mod 2.
        prev = sorted((p for p in trials if p["round"] == t["round"] - 1), key=lambda p: (-p["score"], p["idx"]))
        donors = [p["model_dir"] for p in prev[:2]]
        assert argv[:3] == ["--epochs=1", "--model_path", donors[t["trial"] % 2]]
        assert argv[3] == f"--saved_params_dir={t['model_dir']}"


def test_crash_hang_and_silent_trials_are_failed_with_reasons_and_the_search_finishes(tmp_path):
    proc = search(tmp_path, "--cpu_slots", "2", "--popsize", "4", "--round", "2", "--seed", "5",
                  "--trial_timeout", "3", extra=["crash_at", "r0i1", "hang_at", "r0i2", "silent_at", "r1i0"])
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    rows = {(r["round"], r["trial"]): r for r in csv.DictReader((out / "trials.csv").open())}
    assert len(rows) == 8
    crashed, hung, silent = rows[("0", "1")], rows[("0", "2")], rows[("1", "0")]
    assert crashed["status"] == "FAILED" and "exit code 1" in crashed["reason"] and crashed["score"] == ""
    assert hung["status"] == "FAILED" and "timed out after 3s" in hung["reason"]
    assert silent["status"] == "FAILED" and "never called report_final_result" in silent["reason"]
    assert sum(r["status"] == "OK" for r in rows.values()) == 5
    assert "RuntimeError: toy crash in r0i1" in (out / "round0" / "log-1.info").read_text()
    for idx, rnd in ((1, 0), (2, 0), (0, 1)):
        assert f"round {rnd} trial {idx}: FAILED" in proc.stdout
        assert f"see out/round{rnd}/log-{idx}.info" in proc.stdout
    assert "5 OK, 3 FAILED" in proc.stdout
    assert (out / "best_model" / "model.json").is_file()


def test_two_cpu_slots_run_two_trials_at_the_same_time(tmp_path):
    proc = search(tmp_path, "--cpu_slots", "2", "--popsize", "2", "--round", "1", "--seed", "2",
                  rec="rec", extra=["sleep", "1.5"])
    assert proc.returncode == 0, proc.stderr
    rec = tmp_path / "rec"
    begin = {json.loads(p.read_text())["tag"]: json.loads(p.read_text())["start"] for p in rec.glob("*-start.json")}
    end = {json.loads(p.read_text())["tag"]: json.loads(p.read_text())["end"] for p in rec.glob("*-end.json")}
    assert set(begin) == set(end) == {"r0i0", "r0i1"}
    # Both were running at once: each started before the other ended.
    assert begin["r0i0"] < end["r0i1"] and begin["r0i1"] < end["r0i0"]
    assert {s["cpu_slots"] for s in starts(rec)} <= {"2", None}  # None when the user set OMP_NUM_THREADS


def test_kill_minus_9_then_resume_loses_and_reruns_nothing_and_reaches_the_same_best(tmp_path):
    flags = ["--cpu_slots", "2", "--popsize", "4", "--round", "4", "--seed", "11"]
    ref = search(tmp_path, *flags, out="ref", extra=["sleep", "0.2"])
    assert ref.returncode == 0, ref.stderr

    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    args = [TOY, "--param_file", "hp.yaml", "--output_dir", "out", *flags]
    code = "import sys; from autoft.tuner.cli import main; main()"
    tuner = subprocess.Popen([sys.executable, "-c", code, *map(str, args), "record_dir", tmp_path / "rec",
                              "sleep", "0.2"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "out" / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until round 1 is under way (5 trials journaled)
        if journal.exists() and journal.read_text().count('"type": "trial"') >= 5:
            break
        time.sleep(0.02)
    os.kill(tuner.pid, signal.SIGKILL)
    tuner.wait()
    before = journal.read_text()
    _, done_before = read_journal(journal)
    assert 5 <= len(done_before) < 16

    proc = run_cli([*args, "--resume", "record_dir", tmp_path / "rec", "sleep", "0.2"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    after = journal.read_text()
    assert after.startswith(before)  # nothing finished was lost or rewritten
    _, trials = read_journal(journal)
    keys = [(t["round"], t["idx"]) for t in trials]
    assert len(keys) == 16 and len(set(keys)) == 16  # every trial exactly once
    runs = {}
    for s in starts(tmp_path / "rec"):
        runs[s["tag"]] = runs.get(s["tag"], 0) + 1
    for t in done_before:  # trials finished before the kill never ran again
        assert runs[f"r{t['round']}i{t['idx']}"] == 1
    # Same result as the uninterrupted search with the same seed: same best, same trajectory.
    _, ref_trials = read_journal(tmp_path / "ref" / "journal.jsonl")
    assert [t["point"] for t in sorted(trials, key=lambda t: t["trial"])] == \
        [t["point"] for t in sorted(ref_trials, key=lambda t: t["trial"])]
    ref_best = yaml.safe_load((tmp_path / "ref" / "best_hparams.yaml").read_text())
    best = yaml.safe_load((tmp_path / "out" / "best_hparams.yaml").read_text())
    assert (best["score"], best["hparams"]) == (ref_best["score"], ref_best["hparams"])

    # A resume with a different configuration is refused with the reason.
    mismatch = run_cli([*args[:-2], "--seed", "12", "--resume"], tmp_path)
    assert mismatch.returncode == 2 and "different search" in mismatch.stderr and "seed" in mismatch.stderr


def test_ctrl_c_stops_running_trials_and_prints_the_resume_command(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    code = "import sys; from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()"
    tuner = subprocess.Popen([sys.executable, "-c", code, TOY, "--param_file", "hp.yaml", "--cpu_slots", "2",
                              "--popsize", "2", "--round", "2", "--output_dir", "out", "--seed", "4", "sleep", "60"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = tmp_path / "out" / ".running.json"
    deadline = time.time() + 60
    pids = []
    while time.time() < deadline and len(pids) < 2:
        time.sleep(0.05)
        try:
            pids = [e["pid"] for e in json.loads(running.read_text())]
        except (FileNotFoundError, ValueError):
            pass
    assert len(pids) == 2
    tuner.send_signal(signal.SIGINT)
    _, err = tuner.communicate(timeout=60)
    assert tuner.returncode == 130
    assert "Traceback" not in err
    assert "Continue with: autofinetune" in err and "--resume" in err and "sleep 60" in err
    hint = err.split("Continue with: ", 1)[1].splitlines()[0]
    assert hint.index("--resume") < hint.index("sleep 60")  # flags before the trailing options
    for pid in pids:  # the trials' processes are gone (reaped by the tuner)
        assert not Path(f"/proc/{pid}").exists()
    assert json.loads(running.read_text()) == []
    header, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    assert header["seed"] == 4 and trials == []
