"""Fault injection against the real `autofinetune` CLI (issue 13): concurrent tuners, NaN and garbage
scores, a damaged journal, trial grandchildren, a double Ctrl-C, a moved output dir, a full disk,
kill -9 at random (seeded) moments followed by --resume, GPU out-of-memory, a failing --check, and
trials that continue where a kill stopped them.

Faults are real: signals, processes, a tiny filesystem (a tmpfs in a user namespace where the
machine allows one) or a writer that fails with ENOSPC. Nothing is timed: the tests wait (with
generous deadlines) for what the toy or the tuner writes."""

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.test_tuner_cli import ROOT, SPACE_YAML, TOY, assert_clean_error, run_cli
from tests.test_tuner_search import (
    alive,
    journaled,
    read_journal,
    round_records,
    start_tuner,
    starts,
    stop_leftovers,
    wait_for,
)

RESUMABLE = ROOT / "tests" / "toy" / "resumable.py"
FIXTURE = ROOT / "tests" / "toy" / "journal_format1.jsonl"


def setup(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)


def base(out="out", *flags):
    return [TOY, "--param_file", "hp.yaml", "--output_dir", out, "--cpu_slots", "2", *flags]


def csv_rows(path):
    return list(csv.DictReader(Path(path).open()))


def procs_with(marker):
    """Pids of live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid() and alive(int(p.name), marker):
            found.append(int(p.name))
    return found


# ---- one tuner per output dir --------------------------------------------------------------------
def test_a_second_tuner_new_or_resume_is_refused_while_one_runs_and_its_trials_are_left_alone(tmp_path):
    setup(tmp_path)
    rec, gate = tmp_path / "rec", tmp_path / "gate"
    args = base("out", "--popsize", "2", "--round", "1", "--seed", "1")
    first = start_tuner([*args, "record_dir", rec, "block_at", "r0i0,r0i1", "gate", gate], tmp_path,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rec.exists() and len(starts(rec)) == 2, "both trials of the first tuner to start")
        again = run_cli([*args, "record_dir", rec, "block_at", "r0i0,r0i1", "gate", gate], tmp_path)
        assert_clean_error(again, "is in use by another tuner", f"pid {first.pid} on ", "started ")
        resumed = run_cli([*args, "--resume", "record_dir", rec, "block_at", "r0i0,r0i1", "gate", gate], tmp_path)
        assert_clean_error(resumed, "is in use by another tuner", f"pid {first.pid}")
        # The refused resume did not kill the running tuner's trials (its orphan killer never ran).
        for s in starts(rec):
            assert alive(s["pid"], s["argv"][0])
        gate.write_text("open")
        out, err = first.communicate(timeout=300)
    finally:
        gate.write_text("open")
        stop_leftovers(first, rec)
    assert first.returncode == 0, err
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    assert sorted(t["trial"] for t in trials) == [0, 1]
    assert len(starts(rec)) == 2  # no trial ran twice


def test_two_tuners_started_at_the_same_moment_run_the_search_once(tmp_path):
    setup(tmp_path)
    rec, gate = tmp_path / "rec", tmp_path / "gate"
    args = [*base("out", "--popsize", "2", "--round", "1", "--seed", "1"), "record_dir", rec,
            "block_at", "r0i0,r0i1", "gate", gate]
    tuners = [start_tuner(args, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    try:
        wait_for(lambda: any(t.poll() is not None for t in tuners), "one of the two tuners to be refused")
        gate.write_text("open")
        results = [(t.wait(timeout=300), t.stderr.read()) for t in tuners]
    finally:
        gate.write_text("open")
        for t in tuners:
            stop_leftovers(t, rec)
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    refused = next(err for rc, err in results if rc == 2)
    assert "in use by another tuner" in refused or "already holds a search" in refused
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    assert sorted(t["trial"] for t in trials) == [0, 1] and len(starts(rec)) == 2


# ---- scores -------------------------------------------------------------------------------------
def test_nan_inf_and_garbage_scores_fail_their_trials_and_the_search_goes_on(tmp_path):
    setup(tmp_path)
    proc = run_cli([*base("out", "--popsize", "3", "--round", "2", "--seed", "3"), "score_at", "r0i0",
                    "score_text", "nan"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    garbage = run_cli([*base("g", "--popsize", "3", "--round", "2", "--seed", "3", "--tuning_strategy", "hazero"),
                       "score_at", "r0i1,r1i0", "score_text", "0.9abc"], tmp_path, timeout=300)
    assert garbage.returncode == 0, garbage.stderr
    inf = run_cli([*base("i", "--popsize", "3", "--round", "1", "--seed", "3"), "score_at", "r0i2",
                   "score_text", "inf"], tmp_path, timeout=300)
    assert inf.returncode == 0, inf.stderr
    for out, key, why in (("out", (0, 0), "non-finite score (nan)"), ("g", (0, 1), "not a number ('0.9abc')"),
                          ("g", (1, 0), "not a number"), ("i", (0, 2), "non-finite score (inf)")):
        _, trials = read_journal(tmp_path / out / "journal.jsonl")
        t = next(t for t in trials if (t["round"], t["idx"]) == key)
        assert t["status"] == "FAILED" and t["score"] is None and why in t["reason"], t
    for p in (proc, garbage, inf):
        assert "Traceback" not in p.stderr


def test_a_journal_holding_a_nan_score_resumes_with_that_trial_failed(tmp_path):
    setup(tmp_path)
    args = base("out", "--popsize", "3", "--seed", "3")
    first = run_cli([*args, "--round", "1"], tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    journal = tmp_path / "out" / "journal.jsonl"
    lines = journal.read_text().splitlines()
    # What an older tuner journaled for a script that wrote NaN past report_final_result.
    bad = json.loads(lines[1])
    bad["score"] = float("nan")
    lines[1] = json.dumps(bad, sort_keys=True)
    journal.write_text("\n".join(lines) + "\n")
    more = run_cli([*args, "--round", "2", "--resume"], tmp_path, timeout=300)
    assert more.returncode == 0, more.stderr
    assert "Traceback" not in more.stderr
    row = next(r for r in csv_rows(tmp_path / "out" / "trials.csv")
               if (int(r["round"]), int(r["trial"])) == (bad["round"], bad["idx"]))
    assert row["status"] == "FAILED" and "non-finite score (nan)" in row["reason"]


# ---- the journal never loses a record --------------------------------------------------------------
def test_a_damaged_middle_line_stops_resume_with_file_line_and_changes_nothing(tmp_path):
    setup(tmp_path)
    args = base("out", "--popsize", "3", "--seed", "4", "--evaluator", "fulltrail")
    first = run_cli([*args, "--round", "2"], tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    journal = out / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    damaged = "".join(lines[:3] + ['{"type": "trial", "round": 0, "idx\x00\x00 garbage\n'] + lines[3:])
    journal.write_text(damaged)
    models = sorted(p.name for p in out.glob("round*/model-*"))
    logs = sorted(p.name for p in out.glob("round*/log-*"))
    resumed = run_cli([*args, "--round", "3", "--resume"], tmp_path, timeout=300)
    assert_clean_error(resumed, "journal.jsonl:4: not a journal record", "valid records follow", "Nothing was changed")
    assert journal.read_text() == damaged  # not truncated
    assert sorted(p.name for p in out.glob("round*/model-*")) == models
    assert sorted(p.name for p in out.glob("round*/log-*")) == logs

    # Garbage after the last record (and a torn line) is what a kill leaves: dropped, the search resumes.
    journal.write_text("".join(lines) + "\x00\x00\x00\nnot json\n" + '{"type": "tri')
    resumed = run_cli([*args, "--round", "3", "--resume"], tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    _, trials = read_journal(journal)
    assert sorted(t["trial"] for t in trials) == list(range(9))


def test_an_unwritable_journal_is_found_before_any_trial_runs(tmp_path):
    setup(tmp_path)
    rec = tmp_path / "rec"
    args = base("out", "--popsize", "2", "--seed", "4")
    assert run_cli([*args, "--round", "1", "record_dir", rec], tmp_path, timeout=300).returncode == 0
    journal = tmp_path / "out" / "journal.jsonl"
    resume = [*args, "--round", "2", "--resume", "record_dir", rec]
    journal.chmod(0o444)
    try:
        if not os.access(journal, os.W_OK):
            proc = run_cli(resume, tmp_path)
        elif shutil.which("unshare") and _can_mount_tmpfs(tmp_path):
            # root ignores file modes: a read-only bind mount of the journal in a mount namespace instead.
            code = "import sys; from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()"
            tuner = " ".join(map(repr, [sys.executable, "-c", code, *map(str, resume)]))
            proc = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {journal} {journal} && "
                                   f"mount -o remount,bind,ro {journal} && exec {tuner}"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=120)
        else:
            pytest.skip("running as root without mount namespaces: nothing makes the journal unwritable")
    finally:
        journal.chmod(0o644)
    assert_clean_error(proc, "journal.jsonl is not writable")
    assert len(starts(rec)) == 2  # round 0's; no trial of round 1 ran


def test_an_unwritable_output_dir_is_refused_in_one_line_before_any_trial(tmp_path):
    setup(tmp_path)
    if not (shutil.which("unshare") and _can_mount_tmpfs(tmp_path)):
        pytest.skip("no mount namespace to make a read-only directory")
    ro, rec = tmp_path / "ro", tmp_path / "rec"
    ro.mkdir()
    code = "import sys; from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()"
    tuner = " ".join(map(repr, [sys.executable, "-c", code, *map(str, base(str(ro / "out"), "--popsize", "2")),
                                "record_dir", str(rec)]))
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
                           f"exec {tuner}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert_clean_error(proc, f"--output_dir {ro / 'out'}: cannot create it (Read-only file system)")
    assert len(proc.stderr.splitlines()) == 1 and not rec.exists()


def test_resume_with_fewer_rounds_than_journaled_is_refused_and_keeps_the_outputs(tmp_path):
    setup(tmp_path)
    args = base("out", "--popsize", "2", "--seed", "4")
    assert run_cli([*args, "--round", "3"], tmp_path, timeout=300).returncode == 0
    before = (tmp_path / "out" / "best_hparams.yaml").read_text()
    proc = run_cli([*args, "--round", "1", "--resume"], tmp_path)
    assert_clean_error(proc, "--resume --round 1", "trials of round 2", "Give --round 3 or more")
    assert (tmp_path / "out" / "best_hparams.yaml").read_text() == before


# ---- processes ----------------------------------------------------------------------------------
def test_a_trials_grandchild_does_not_outlive_it(tmp_path):
    setup(tmp_path)
    rec = tmp_path / "rec"
    proc = run_cli([*base("out", "--popsize", "2", "--round", "1", "--seed", "1"), "record_dir", rec,
                    "grandchild_at", "r0i0"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    pid = json.loads((rec / "r0i0-grandchild.json").read_text())["pid"]
    # The tuner ended the trial's process group when the trial exited, before it journaled it.
    wait_for(lambda: not alive(pid, f"grandchild-of-r0i0-in-{rec}"), "the grandchild to be reaped by init", timeout=30)
    assert not procs_with(f"grandchild-of-r0i0-in-{rec}")


def test_a_double_ctrl_c_cannot_skip_the_kill_and_no_trial_survives(tmp_path):
    setup(tmp_path)
    rec = tmp_path / "rec"
    tuner = start_tuner([*base("out", "--popsize", "2", "--round", "1", "--seed", "1"), "record_dir", rec,
                         "stubborn_at", "r0i0,r0i1", "grandchild_at", "r0i1"], tmp_path, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rec.exists() and len(starts(rec)) == 2, "both (SIGTERM-ignoring) trials to start")
        trials = {s["pid"]: s["argv"][0] for s in starts(rec)}
        tuner.send_signal(signal.SIGINT)
        # The trials got SIGTERM (and ignore it): the tuner is in its grace period. Ctrl-C again.
        wait_for(lambda: len(list(rec.glob("*-sigterm-*"))) >= 2, "the trials to receive SIGTERM")
        tuner.send_signal(signal.SIGINT)
        tuner.send_signal(signal.SIGTERM)
        _, err = tuner.communicate(timeout=120)
    finally:
        stop_leftovers(tuner, rec)
    assert tuner.returncode == 130, err
    assert "stopping the running trials; please wait" in err
    assert "running trials were stopped" in err and "Traceback" not in err
    for pid, marker in trials.items():  # true: SIGKILL came after the grace period
        assert not alive(pid, marker)
    grandchild = json.loads((rec / "r0i1-grandchild.json").read_text())["pid"]
    wait_for(lambda: not alive(grandchild, f"grandchild-of-r0i1-in-{rec}"), "the trial's grandchild to be gone", timeout=30)
    assert not (tmp_path / "out" / ".running.json").exists()


# ---- paths --------------------------------------------------------------------------------------
def test_a_moved_output_dir_resumes_and_warm_starts_from_its_new_place(tmp_path):
    setup(tmp_path)
    rec = tmp_path / "rec"
    flags = ["--popsize", "4", "--seed", "6", "--keep_models", "2"]
    first = run_cli([*base("before", *flags), "--round", "1", "record_dir", rec], tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    shutil.move(tmp_path / "before", tmp_path / "after")
    more = run_cli([*base("after", *flags), "--round", "2", "--resume", "record_dir", rec], tmp_path, timeout=300)
    assert more.returncode == 0, more.stderr
    _, trials = read_journal(tmp_path / "after" / "journal.jsonl")
    assert all(t["status"] == "OK" for t in trials)  # the toy fails a warm start from a missing donor
    donors = round_records(tmp_path / "after" / "journal.jsonl")[0]["donors"]
    assert donors and all(not Path(d).is_absolute() for d in donors)
    for s in starts(rec):
        if s["tag"].startswith("r1"):
            assert s["argv"][2].startswith(str((tmp_path / "after").resolve()))
    rows = csv_rows(tmp_path / "after" / "trials.csv")
    assert all(not Path(r["model_dir"]).is_absolute() and r["log"].startswith("round") for r in rows)


def test_a_journal_written_by_the_previous_tuner_version_resumes(tmp_path):
    """tests/toy/journal_format1.jsonl was written by the tuner before the core rewrite (absolute model
    dirs under another output dir, logs relative to the working dir): it resumes and warm-starts."""
    setup(tmp_path)
    shutil.copy(TOY, tmp_path / "quadratic.py")
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(FIXTURE, out / "journal.jsonl")
    donors = round_records(out / "journal.jsonl")[1]["donors"]
    for d in donors:  # the fixture's kept model dirs (the journal's paths end in round<k>/model-<i>)
        model = out / Path(d).parent.name / Path(d).name
        model.mkdir(parents=True)
        (model / "model.json").write_text("{}")
    proc = run_cli(["quadratic.py", "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "2",
                    "--popsize", "2", "--round", "3", "--keep_models", "1", "--resume"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 finished trial(s) in the journal" in proc.stdout
    _, trials = read_journal(out / "journal.jsonl")
    assert sorted(t["trial"] for t in trials) == list(range(6)) and all(t["status"] == "OK" for t in trials)
    for i in range(2):  # round 2 warm-started from round 1's donor, found in this output dir
        command = (out / "round2" / f"log-{i}.info").read_text().splitlines()[1]
        assert f"--model_path {out.resolve() / 'round1' / 'model-0'} " in command
    rows = csv_rows(out / "trials.csv")
    assert [r["model_dir"] for r in rows][:2] == ["round0/model-0", "round0/model-1"]


# ---- disk full ----------------------------------------------------------------------------------
# The journal's os.write fails with ENOSPC after {after} lines, as on a full disk.
FAILING_WRITER = ("import errno, os, sys, types\n"
                  "from autoft.tuner import journal\n"
                  "calls = [0]\n"
                  "def write(fd, data):\n"
                  "    calls[0] += 1\n"
                  "    if calls[0] > {after}:\n"
                  "        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
                  "    return os.write(fd, data)\n"
                  "full = types.ModuleType('os'); full.__dict__.update(os.__dict__); full.write = write\n"
                  "journal.os = full\n"
                  "from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()\n")


def test_a_failing_writer_ends_in_one_line_and_resume_completes_the_search(tmp_path):
    setup(tmp_path)
    args = base("out", "--popsize", "3", "--round", "2", "--seed", "8")
    proc = subprocess.run([sys.executable, "-c", FAILING_WRITER.format(after=4), *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    err = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert len(err) == 1 and "journal.jsonl: No space left on device (ENOSPC)" in err[0] and " free on " in err[0]
    assert "--resume" in err[0]
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")  # every line intact
    assert len(trials) == 3 and set(round_records(tmp_path / "out" / "journal.jsonl")) == {0}  # 4 lines written
    more = run_cli([*args, "--resume"], tmp_path, timeout=300)
    assert more.returncode == 0, more.stderr
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    assert sorted(t["trial"] for t in trials) == list(range(6))


def _can_mount_tmpfs(tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_a_full_filesystem_ends_in_one_line_with_a_valid_journal_and_resume_works(tmp_path):
    if shutil.which("unshare") is None or not _can_mount_tmpfs(tmp_path):
        pytest.skip("no unprivileged user+mount namespace here (the failing-writer test covers the same path)")
    setup(tmp_path)
    tiny, kept = tmp_path / "tiny", tmp_path / "kept"
    tiny.mkdir()
    code = ("import sys; from autoft.tuner.cli import main; sys.argv[0] = 'autofinetune'; main()")
    tuner = [sys.executable, "-c", code, str(TOY), "--param_file", str(tmp_path / "hp.yaml"), "--output_dir",
             str(tiny / "out"), "--cpu_slots", "2", "--popsize", "4", "--round", "10", "--seed", "9"]
    script = (f"mount -t tmpfs -o size=160k tmpfs {tiny} || exit 99; "
              f"{' '.join(map(repr, tuner))} > {tmp_path}/stdout 2> {tmp_path}/stderr; echo $? > {tmp_path}/rc; "
              f"cp -a {tiny}/out {kept}")
    subprocess.run(["unshare", "-rm", "sh", "-c", script], timeout=600, check=True)
    rc, err = int((tmp_path / "rc").read_text()), (tmp_path / "stderr").read_text()
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "No space left on device (ENOSPC)" in lines[0] and " free on " in lines[0], err
    assert "will not fit; add --keep_models" in (tmp_path / "stdout").read_text()
    _, trials = read_journal_tolerant(kept / "journal.jsonl")
    assert 0 < len(trials) < 40
    # The copy is the same search in a roomier place: it resumes and finishes.
    more = run_cli([TOY, "--param_file", "hp.yaml", "--output_dir", kept, "--cpu_slots", "2", "--popsize", "4",
                    "--round", "10", "--seed", "9", "--resume", "--keep_models", "2"], tmp_path, timeout=600)
    assert more.returncode == 0, more.stderr
    _, trials = read_journal(kept / "journal.jsonl")
    assert sorted(t["trial"] for t in trials) == list(range(40))


def read_journal_tolerant(path):
    """The journal's records, a torn last line (a write the full disk cut) left out."""
    lines = Path(path).read_text(errors="replace").splitlines()
    recs = []
    for x in lines:
        try:
            recs.append(json.loads(x))
        except ValueError:
            assert x is lines[-1], f"only the last line may be torn: {x!r}"
    return recs[0], [r for r in recs[1:] if r["type"] == "trial"]


# ---- kill -9 at random moments ------------------------------------------------------------------
def test_kill_minus_9_at_seeded_random_moments_then_resume_equals_an_uninterrupted_search(tmp_path):
    setup(tmp_path)
    flags = ["--popsize", "4", "--round", "4", "--seed", "12", "--keep_models", "2"]
    ref = run_cli(base("ref", *flags), tmp_path, timeout=300)
    assert ref.returncode == 0, ref.stderr
    journal = tmp_path / "out" / "journal.jsonl"
    rng = random.Random(13)
    targets = sorted(rng.sample(range(1, 15), 3))  # kill once this many trials are journaled
    rec = tmp_path / "rec"
    for target in targets:
        resume = ["--resume"] if journal.exists() else []
        tuner = start_tuner([*base("out", *flags), *resume, "record_dir", rec], tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda n=target, t=tuner: journaled(journal) >= n or t.poll() is not None,
                     f"{target} journaled trials")
            tuner.kill()
            tuner.wait()
        finally:
            stop_leftovers(tuner, rec)
        # trials.csv is appended row by row: what a kill leaves is still a valid table.
        if (tmp_path / "out" / "trials.csv").exists():
            rows = csv_rows(tmp_path / "out" / "trials.csv")
            assert all(r["status"] in ("OK", "FAILED") for r in rows)
    last = run_cli([*base("out", *flags), "--resume", "record_dir", rec], tmp_path, timeout=300)
    assert last.returncode == 0, last.stderr
    _, trials = read_journal(journal)
    _, ref_trials = read_journal(tmp_path / "ref" / "journal.jsonl")
    keys = [t["trial"] for t in trials]
    assert sorted(keys) == list(range(16)) and len(set(keys)) == 16
    by = {t["trial"]: t for t in trials}
    for t in ref_trials:
        assert (by[t["trial"]]["point"], by[t["trial"]]["score"], by[t["trial"]]["status"]) == \
            (t["point"], t["score"], t["status"])
    best, ref_best = (yaml.safe_load((tmp_path / d / "best_hparams.yaml").read_text()) for d in ("out", "ref"))
    assert (best["score"], best["hparams"]) == (ref_best["score"], ref_best["hparams"])
    assert len(csv_rows(tmp_path / "out" / "trials.csv")) == 16


# ---- check before spending -----------------------------------------------------------------------
AUTOFT_LIKE = textwrap.dedent(f"""\
    # A stand-in for autoft's train.py: the tuner recognises it by its import of autoft.finetune
    # and runs `train.py --check <first trial's flags>` before any trial (the toy answers it).
    import runpy
    if False:
        from autoft.finetune import train  # noqa: F401 - recognised, never run
    runpy.run_path({str(TOY)!r}, run_name="__main__")
    """)


def test_autoft_train_check_failure_stops_before_any_trial(tmp_path):
    setup(tmp_path)
    (tmp_path / "train.py").write_text(AUTOFT_LIKE)
    rec = tmp_path / "rec"
    proc = run_cli(["train.py", "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "2",
                    "record_dir", rec, "check_error", "--dataset: tnews data missing in /nowhere"], tmp_path)
    assert_clean_error(proc, "train.py --check with the first trial's flags failed, so no trial was run",
                       "--dataset: tnews data missing in /nowhere")
    assert not rec.exists() and not (tmp_path / "out").exists()
    ok = run_cli(["train.py", "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "2", "--popsize", "2",
                  "--round", "1", "record_dir", rec], tmp_path, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "check OK: toy flags resolved" in ok.stdout and len(starts(rec)) == 2


def test_the_gpu_memory_precheck_uses_the_check_estimate_and_refuses_trials_that_cannot_fit(tmp_path):
    setup(tmp_path)
    (tmp_path / "train.py").write_text(AUTOFT_LIKE)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"  # one 16 GiB card
    smi.write_text('#!/bin/sh\ncase "$*" in *query-gpu*) echo "0, GPU-aaaa, 16384";; '
                   '*) echo "GPU 0: Fake (UUID: GPU-aaaa)";; esac\n')
    smi.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    rec = tmp_path / "rec"
    gib = 1024**3
    refused = run_cli(["train.py", "--param_file", "hp.yaml", "--output_dir", "out", "--gpu", "0", "--trials_per_gpu",
                       "2", "record_dir", rec, "check_estimate", 10 * gib], tmp_path, env=env)
    assert_clean_error(refused, "--trials_per_gpu 2 does not fit", "at most 1 fit")
    assert not rec.exists() and not (tmp_path / "out").exists()
    tight = run_cli(["train.py", "--param_file", "hp.yaml", "--output_dir", "out", "--gpu", "0", "--trials_per_gpu",
                     "2", "--popsize", "2", "--round", "1", "record_dir", rec, "check_estimate", int(7.5 * gib)],
                    tmp_path, env=env, timeout=300)
    assert tight.returncode == 0, tight.stderr
    assert "warning: GPU 0 (16.0 GiB): 2 trial(s) x ~7.5 GiB" in tight.stdout and "borderline" in tight.stdout
    assert len(starts(rec)) == 2


def test_when_every_first_round_trial_fails_the_same_way_the_search_stops_with_that_line(tmp_path):
    setup(tmp_path)
    proc = run_cli([*base("out", "--popsize", "3", "--round", "5", "--seed", "2"),
                    "fail_all", "model 'roberta-wwm-ext-large' not found in /models"], tmp_path, timeout=300)
    assert_clean_error(proc, "every trial of round 0 failed with the same last log line: model "
                       "'roberta-wwm-ext-large' not found in /models")
    assert proc.stdout.count("FAILED, crashed: exit code 2: model 'roberta-wwm-ext-large' not found") == 3
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    assert len(trials) == 3


def test_gpu_out_of_memory_is_named_with_its_fixes(tmp_path):
    setup(tmp_path)
    proc = run_cli([*base("out", "--popsize", "3", "--round", "1", "--seed", "2"), "oom_at", "r0i1"], tmp_path,
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = csv_rows(tmp_path / "out" / "trials.csv")[1]
    assert row["status"] == "FAILED" and row["reason"] == "out of GPU memory"
    assert "round 0 trial 1: FAILED, out of GPU memory: ResourceExhaustedError: Out of memory" in proc.stdout
    for text in (proc.stdout, (tmp_path / "out" / "summary.txt").read_text()):
        assert "1 trial(s) ran out of GPU memory" in text and "--grad_accum" in text and "--amp" in text
        assert "--trials_per_gpu" in text


def test_populationbased_warm_starts_win_over_trailing_epochs_and_outputs_are_relative(tmp_path):
    setup(tmp_path)
    rec = tmp_path / "rec"
    proc = run_cli([*base("out", "--popsize", "2", "--round", "2", "--seed", "2"), "record_dir", rec,
                    "epochs", "3"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "warm-started trials get --epochs=1" in proc.stdout
    for s in starts(rec):
        epochs = [a for a in s["argv"] if a.startswith("--epochs")]
        assert epochs == (["--epochs=3"] if s["tag"].startswith("r0") else ["--epochs=1"]), s["argv"]
    out = tmp_path / "out"
    assert not (out / ".running.json").exists()
    best = yaml.safe_load((out / "best_hparams.yaml").read_text())
    assert best["model_dir"] == "best_model" and best["trial_model_dir"].startswith("round")
    summary = (out / "summary.txt").read_text()
    assert "4 trials: 4 OK" in summary and "The final best eval score is" in summary
    assert "Disk: each trial keeps its model (~" in proc.stdout and "the size of the first saved model" in proc.stdout


def test_the_disk_a_search_keeping_every_model_needs_is_said_at_the_start(tmp_path):
    setup(tmp_path)
    pretrained = tmp_path / "pretrained"
    pretrained.mkdir()
    (pretrained / "model.safetensors").write_bytes(os.urandom(2 * 1024 * 1024))
    proc = run_cli([*base("out", "--popsize", "2", "--round", "2", "--seed", "2"), "model_dir", pretrained], tmp_path,
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("Disk: "))
    assert "(~2.0 MB, the size of the pretrained model); the 4 trial(s) still to run need ~8.0 MB" in line
    assert proc.stdout.index("Disk: ") < proc.stdout.index("round 0 trial")  # before any trial finished
    assert "will not fit" not in line
    kept = run_cli([*base("k", "--popsize", "2", "--round", "1", "--seed", "2", "--keep_models", "1"), "model_dir",
                    pretrained], tmp_path, timeout=300)
    assert kept.returncode == 0 and "Disk: " not in kept.stdout  # bounded by --keep_models: nothing to warn


# ---- trials that continue -----------------------------------------------------------------------
def test_resume_continues_an_interrupted_trial_from_its_resume_state(tmp_path):
    setup(tmp_path)
    rec, out = tmp_path / "rec", tmp_path / "out"
    flags = [RESUMABLE, "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "2", "--popsize", "2",
             "--round", "1", "--seed", "3", "--evaluator", "fulltrail"]
    trailing = ["record_dir", rec, "steps", "10", "block_at_step", "5", "block_tag", "r0i1", "gate", tmp_path / "gate"]
    tuner = start_tuner([*flags, *trailing], tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "round0" / "model-1.resume" / "state.json"
    try:
        wait_for(lambda: journaled(out / "journal.jsonl") == 1 and state.exists()
                 and json.loads(state.read_text())["step"] == 5, "r0i0 journaled and r0i1 held at step 5")
        tuner.kill()
        tuner.wait()
    finally:
        if tuner.poll() is None:
            tuner.kill()
    resumed = run_cli([*flags, "--resume", *trailing], tmp_path, timeout=300)
    (tmp_path / "gate").write_text("open")
    assert resumed.returncode == 0, resumed.stderr
    assert "round 0 trial 1: continuing the interrupted trial" in resumed.stdout
    log = (out / "round0" / "log-1.info").read_text()
    assert "step 4\n" in log.split("relaunched by --resume")[0]  # the first attempt's lines are kept
    assert "resumed from step 5 of 10" in log
    assert (rec / "r0i1-steps.txt").read_text().split() == [str(i) for i in range(10)]  # no step ran twice
    assert not (out / "round0" / "model-1.resume").exists()
    _, trials = read_journal(out / "journal.jsonl")
    assert [t["status"] for t in sorted(trials, key=lambda t: t["trial"])] == ["OK", "OK"]
    assert next(t for t in trials if t["trial"] == 1)["last_step"] == 10
