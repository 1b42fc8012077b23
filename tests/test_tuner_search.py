"""End-to-end searches: the real `autofinetune` CLI in a subprocess runs tests/toy/quadratic.py
(a noisy quadratic of x, y, n with optimum score 1.0 at x=3, y=1.5, n=26) on CPU slots.

No test here times anything or sleeps to let something happen: they wait (with generous
deadlines, for a loaded machine) for what the toy or the tuner writes: a trial's start record,
a journal line, the running file; the toy's barrier and gate hold trials where a test needs them."""

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


def round_records(path):
    """The journal's round records (donors, --keep_models deletions) keyed by round."""
    lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
    return {x["round"]: x for x in lines if x["type"] == "round"}


def model_dirs(out_dir):
    """``round<k>/model-<i>`` of every non-empty model dir left in ``out_dir``."""
    return {f"{p.parent.name}/{p.name}" for p in Path(out_dir).glob("round*/model-*") if any(p.iterdir())}


def rel(model_dir):
    p = Path(model_dir)
    return f"{p.parent.name}/{p.name}"


def wait_for(predicate, what, timeout=120):
    """Poll ``predicate`` until it holds; the deadline is generous so a loaded machine only waits longer."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def journaled(path):
    try:
        return Path(path).read_text().count('"type": "trial"')
    except FileNotFoundError:
        return 0


# A tuner started with Popen, for tests that signal it. SIGINT is reset to Python's default
# first: a shell without job control starts background jobs (a `pytest ... &` in a script) with
# SIGINT ignored, children inherit that, and Python then never raises KeyboardInterrupt.
TUNER_CODE = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
              "from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()")


def start_tuner(args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-c", TUNER_CODE, *map(str, args)], cwd=cwd, **kwargs)


def alive(pid, marker):
    """Whether process ``pid`` is still running (not a zombie) with ``marker`` in its command line
    (so a pid reused by an unrelated process does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and marker in cmdline


def stop_leftovers(tuner, rec_dir):
    """Cleanup for a failed test: kill the tuner and the trials it started (their process groups)."""
    if tuner.poll() is None:
        tuner.kill()
        tuner.wait()
    for s in starts(rec_dir) if Path(rec_dir).exists() else []:
        saved_params_dir = next(a for a in s["argv"] if a.startswith("--saved_params_dir="))
        if alive(s["pid"], saved_params_dir):  # still that trial, not a reused pid
            os.killpg(s["pid"], signal.SIGKILL)


def test_hazero_fulltrail_finds_the_optimum_and_writes_every_output(tmp_path):
    proc = search(tmp_path, "--cpu_slots", "2", "--tuning_strategy", "hazero", "--evaluator", "fulltrail",
                  "--seed", "1", "--keep_models", "2", rec="rec", extra=["dataset", "TNEWS"])
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
    assert (out / "round9" / "log-4.info").is_file()
    # --keep_models 2 with fulltrail (no donors): only the two best trials' model dirs are left.
    top2 = sorted(trials, key=lambda t: (-t["score"], t["trial"]))[:2]
    assert model_dirs(out) == {rel(t["model_dir"]) for t in top2}
    assert sum(r["model_kept"] == "deleted" for r in rows) == 48
    assert proc.stdout.count("--keep_models 2: deleted ") == 10
    assert "PaddleHub Autofinetune starts." in proc.stdout
    assert "The local best eval value in the 9-th round is" in proc.stdout
    assert "50 trials: 50 OK, 0 FAILED" in proc.stdout


def test_pshe2_populationbased_finds_the_optimum_and_warm_starts_from_the_best_half(tmp_path):
    proc = search(tmp_path, "--cpu_slots", "2", "--seed", "1", "--tuning_strategy", "pshe2", rec="rec")  # populationbased: the default
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
        # The journal's paths are relative to the output dir; trials get them resolved.
        donors = [str(out.resolve() / p["model_dir"]) for p in prev[:2]]
        assert argv[:3] == ["--epochs=1", "--model_path", donors[t["trial"] % 2]]
        assert argv[3] == f"--saved_params_dir={out.resolve() / t['model_dir']}"


def test_crash_hang_and_silent_trials_are_failed_with_reasons_and_the_search_finishes(tmp_path):
    # The timeout must exceed the slowest healthy toy trial on a loaded machine (~0.1 s when quiet),
    # else a healthy trial would time out too: 5 s is a wide margin (50x) and costs 5 s.
    proc = search(tmp_path, "--cpu_slots", "2", "--popsize", "4", "--round", "2", "--seed", "5",
                  "--trial_timeout", "5", extra=["crash_at", "r0i1", "hang_at", "r0i2", "silent_at", "r1i0"])
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    rows = {(r["round"], r["trial"]): r for r in csv.DictReader((out / "trials.csv").open())}
    assert len(rows) == 8
    crashed, hung, silent = rows[("0", "1")], rows[("0", "2")], rows[("1", "0")]
    assert crashed["status"] == "FAILED" and "exit code 1" in crashed["reason"] and crashed["score"] == ""
    assert hung["status"] == "FAILED" and "timed out after 5s" in hung["reason"]
    assert silent["status"] == "FAILED" and "never called report_final_result" in silent["reason"]
    assert sum(r["status"] == "OK" for r in rows.values()) == 5
    assert "RuntimeError: toy crash in r0i1" in (out / "round0" / "log-1.info").read_text()
    for idx, rnd in ((1, 0), (2, 0), (0, 1)):
        assert f"round {rnd} trial {idx}: FAILED" in proc.stdout
        assert f"see out/round{rnd}/log-{idx}.info" in proc.stdout
    assert "5 OK, 3 FAILED" in proc.stdout
    assert (out / "best_model" / "model.json").is_file()


def test_two_cpu_slots_run_two_trials_at_the_same_time(tmp_path):
    # wait_peers 2: each trial, once started, waits until both trials have written their start
    # record (or gives up after 60 s). With two slots both get through; a pool that ran them one
    # after the other would leave the first waiting alone (peers_met False).
    proc = search(tmp_path, "--cpu_slots", "2", "--popsize", "2", "--round", "1", "--seed", "2",
                  rec="rec", extra=["wait_peers", "2"])
    assert proc.returncode == 0, proc.stderr
    rec = tmp_path / "rec"
    begin = {json.loads(p.read_text())["tag"]: json.loads(p.read_text())["start"] for p in rec.glob("*-start.json")}
    ends = {json.loads(p.read_text())["tag"]: json.loads(p.read_text()) for p in rec.glob("*-end.json")}
    assert set(begin) == set(ends) == {"r0i0", "r0i1"}
    assert all(e["peers_met"] is True for e in ends.values())
    # Both were running at once: each started before the other ended.
    end = {tag: e["end"] for tag, e in ends.items()}
    assert begin["r0i0"] < end["r0i1"] and begin["r0i1"] < end["r0i0"]
    assert {s["cpu_slots"] for s in starts(rec)} <= {"2", None}  # None when the user set OMP_NUM_THREADS


def test_kill_minus_9_then_resume_loses_and_reruns_nothing_and_reaches_the_same_best(tmp_path):
    """kill -9 of a --keep_models 1 search held mid-round 1, then --resume: it must end exactly like an
    uninterrupted search without --keep_models (same points, all OK: no warm start from a deleted donor)."""
    flags = ["--cpu_slots", "2", "--popsize", "4", "--round", "4", "--seed", "11"]
    ref = search(tmp_path, *flags, out="ref")
    assert ref.returncode == 0, ref.stderr

    rec, gate = tmp_path / "rec", tmp_path / "gate"
    args = [TOY, "--param_file", "hp.yaml", "--output_dir", "out", *flags, "--keep_models", "1"]
    # Trial 2 of round 1 waits for the gate: the search is held with round 0 done (and pruned) and
    # r1i0, r1i1, r1i3 journaled.
    trailing = ["record_dir", rec, "block_at", "r1i2", "gate", gate]
    journal = tmp_path / "out" / "journal.jsonl"

    def r1i2_runs():
        return [s for s in starts(rec) if s["tag"] == "r1i2"] if rec.exists() else []

    tuner = start_tuner([*args, *trailing], tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed = None
    try:
        wait_for(lambda: journaled(journal) == 7 and r1i2_runs(), "7 journaled trials and r1i2 blocked")
        os.kill(tuner.pid, signal.SIGKILL)
        tuner.wait()
        before = journal.read_text()
        _, done_before = read_journal(journal)
        assert len(done_before) == 7
        assert set(round_records(journal)) == {0}
        orphan = r1i2_runs()[0]["pid"]
        marker = str(tmp_path / "out" / "round1" / "model-2")
        assert alive(orphan, marker)  # the killed tuner's trial is still there, blocked

        # The resume kills the orphan before it runs r1i2 again; that run blocks on the gate too.
        resumed = start_tuner([*args, "--resume", *trailing], tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        wait_for(lambda: len(r1i2_runs()) == 2, "the resumed search to start r1i2 again")
        assert not alive(orphan, marker)
        gate.write_text("open")
        out_text, err_text = resumed.communicate(timeout=300)
    finally:
        gate.write_text("open")
        for proc in (tuner, resumed):
            if proc is not None:
                stop_leftovers(proc, rec)
    assert resumed.returncode == 0, err_text
    assert "7 finished trial(s) in the journal; killed 1 trial process(es)" in out_text
    after = journal.read_text()
    assert after.startswith(before)  # nothing finished was lost or rewritten
    _, trials = read_journal(journal)
    keys = [(t["round"], t["idx"]) for t in trials]
    assert len(keys) == 16 and len(set(keys)) == 16  # every trial exactly once
    runs = {}
    for s in starts(rec):
        runs[s["tag"]] = runs.get(s["tag"], 0) + 1
    for t in done_before:  # trials finished before the kill never ran again
        assert runs[f"r{t['round']}i{t['idx']}"] == 1
    # Same result as the uninterrupted search with the same seed: same best, same trajectory, and
    # every warm start found its donor (the toy fails a trial whose --model_path has no model).
    _, ref_trials = read_journal(tmp_path / "ref" / "journal.jsonl")
    assert [t["point"] for t in sorted(trials, key=lambda t: t["trial"])] == \
        [t["point"] for t in sorted(ref_trials, key=lambda t: t["trial"])]
    assert all(t["status"] == "OK" for t in trials)
    ref_best = yaml.safe_load((tmp_path / "ref" / "best_hparams.yaml").read_text())
    best = yaml.safe_load((tmp_path / "out" / "best_hparams.yaml").read_text())
    assert (best["score"], best["hparams"]) == (ref_best["score"], ref_best["hparams"])
    # What --keep_models 1 left: the best trial and round 3's two donors; best_model/ is the best's copy.
    rounds = round_records(journal)
    assert set(rounds) == {0, 1, 2, 3}
    assert best["model_dir"] == "best_model"  # best_hparams.yaml names the copy, and the trial's own dir
    assert model_dirs(tmp_path / "out") == {rel(best["trial_model_dir"]), *map(rel, rounds[3]["donors"])}
    assert json.loads((tmp_path / "out" / "best_model" / "model.json").read_text())["score"] == best["score"]

    # A resume with a different configuration is refused with the reason.
    mismatch = run_cli([*args, "--seed", "12", "--resume", *trailing], tmp_path)
    assert mismatch.returncode == 2 and "different search" in mismatch.stderr and "seed" in mismatch.stderr


def test_ctrl_c_stops_running_trials_and_prints_the_resume_command(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    rec = tmp_path / "rec"
    tuner = start_tuner([TOY, "--param_file", "hp.yaml", "--cpu_slots", "2", "--popsize", "2", "--round", "2",
                         "--output_dir", "out", "--seed", "4", "record_dir", rec, "hang_at", "r0i0,r0i1"],
                        tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running = tmp_path / "out" / ".running.json"
    try:
        # Both trials are running (each has written its start record, then hangs).
        wait_for(lambda: rec.exists() and len(starts(rec)) == 2, "both trials to start")
        pids = {s["pid"]: s["argv"][0].split("=", 1)[1] for s in starts(rec)}  # pid -> its model dir
        assert all(alive(pid, model_dir) for pid, model_dir in pids.items())
        tuner.send_signal(signal.SIGINT)
        _, err = tuner.communicate(timeout=120)
    finally:
        stop_leftovers(tuner, rec)
    assert tuner.returncode == 130, err
    assert "Traceback" not in err
    assert "Continue with: autofinetune" in err and "--resume" in err and "hang_at r0i0,r0i1" in err
    hint = err.split("Continue with: ", 1)[1].splitlines()[0]
    assert hint.index("--resume") < hint.index("hang_at")  # flags before the trailing options
    for pid, model_dir in pids.items():  # the trials' processes are gone (reaped by the tuner)
        assert not alive(pid, model_dir)
    assert not running.exists()  # every trial of this tuner was ended: nothing for a resume to kill
    header, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    assert header["seed"] == 4 and trials == []


def test_the_default_strategy_is_auto_and_a_resume_without_the_flag_keeps_the_journals(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    base = [TOY, "--param_file", "hp.yaml", "--cpu_slots", "2", "--popsize", "2", "--evaluator", "fulltrail",
            "--seed", "4"]
    fresh = run_cli([*base, "--round", "1", "--output_dir", "auto"], tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert read_journal(tmp_path / "auto" / "journal.jsonl")[0]["tuning_strategy"] == "auto"
    # A search begun as pshe2 (e.g. under PaddleHub's default) and resumed without --tuning_strategy
    # goes on as pshe2: the same trials as an uninterrupted pshe2 search.
    assert run_cli([*base, "--round", "1", "--output_dir", "p", "--tuning_strategy", "pshe2"], tmp_path).returncode == 0
    resumed = run_cli([*base, "--round", "2", "--output_dir", "p", "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    whole = run_cli([*base, "--round", "2", "--output_dir", "whole", "--tuning_strategy", "PSHE2"], tmp_path)
    assert whole.returncode == 0, whole.stderr
    header, trials = read_journal(tmp_path / "p" / "journal.jsonl")
    assert header["tuning_strategy"] == "pshe2"
    in_order = lambda ts: [t["point"] for t in sorted(ts, key=lambda t: t["trial"])]  # noqa: E731
    assert in_order(trials) == in_order(read_journal(tmp_path / "whole" / "journal.jsonl")[1])
    # Naming another strategy on --resume is refused (the journal's is not silently replaced).
    other = run_cli([*base, "--round", "3", "--output_dir", "p", "--resume", "--tuning_strategy", "auto"], tmp_path)
    assert other.returncode == 2 and "tuning_strategy: journal" in other.stderr, other.stderr
