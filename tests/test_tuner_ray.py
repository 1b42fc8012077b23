"""``--backend ray``: the real CLI in a subprocess runs the toy search on a local Ray the tuner
starts itself, and must leave the same journal, trials.csv and best_model as the local pool
(same seed -> same points, statuses and scores), with a crash and a timeout isolated, logs
and result files brought back to the output dir, and a resume across two Ray sessions."""

import csv
import json
import os
from pathlib import Path

import pytest

from tests.test_tuner_cli import SPACE_YAML, TOY, assert_clean_error, run_cli
from tests.test_tuner_search import read_journal

# Trial 1 of round 0 crashes, trial 1 of round 1 hangs until --trial_timeout kills it. The timeout
# counts from the trial's start on the worker; a healthy toy trial takes ~0.1 s even on a loaded
# machine, so 3 s keeps it far from timing out.
FLAGS = ["--cpu_slots", "2", "--popsize", "2", "--seed", "5", "--trial_timeout", "3"]
TRAILING = ["crash_at", "r0i1", "hang_at", "r1i1"]
VOLATILE = {"seconds", "log", "model_dir", "model_path", "slot"}  # paths and timings differ between runs


def comparable(trials):
    return [{k: v for k, v in t.items() if k not in VOLATILE} for t in sorted(trials, key=lambda t: t["trial"])]


def test_ray_backend_matches_the_local_pool_isolates_failures_and_resumes(tmp_path):
    pytest.importorskip("ray", reason="--backend ray needs the optional ray package (pip install 'autoft[ray]')")
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    base = [TOY, "--param_file", "hp.yaml", *FLAGS]
    local = run_cli([*base, "--output_dir", "local", "--round", "2", *TRAILING], tmp_path, timeout=300)
    assert local.returncode == 0, local.stderr

    first = run_cli([*base, "--output_dir", "ray", "--round", "1", "--backend", "ray", *TRAILING], tmp_path,
                    timeout=300)
    assert first.returncode == 0, first.stderr
    assert "a local Ray on this machine" in first.stdout and "num_cpus=1 each" in first.stdout
    resumed = run_cli([*base, "--output_dir", "ray", "--round", "2", "--resume", "--backend", "ray", *TRAILING],
                      tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stdout and "2 finished trial(s)" in resumed.stdout

    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    ray_header, ray_trials = read_journal(ray_out / "journal.jsonl")
    local_header, local_trials = read_journal(local_out / "journal.jsonl")
    assert {**ray_header, "rounds": 2} == local_header  # the header keeps the first run's --round
    assert comparable(ray_trials) == comparable(local_trials)  # same points, statuses, reasons, scores
    assert [t["status"] for t in sorted(ray_trials, key=lambda t: t["trial"])] == ["OK", "FAILED", "OK", "FAILED"]
    assert all(t["slot"].startswith("ray:") for t in ray_trials)

    # trials.csv: same header and rows but for paths and timings.
    def rows(out):
        table = list(csv.DictReader((out / "trials.csv").open()))
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in table], list(table[0])

    assert rows(ray_out) == rows(local_out)
    by_key = {(t["round"], t["idx"]): t for t in ray_trials}
    assert "exit code 1" in by_key[0, 1]["reason"] and "timed out after 3s" in by_key[1, 1]["reason"]

    # What happened on the worker came back to the head's round directories.
    crash_log = (ray_out / "round0" / "log-1.info").read_text()
    assert crash_log.startswith("# autofinetune trial 1 on ray:") and "RuntimeError: toy crash in r0i1" in crash_log
    assert "CUDA_VISIBLE_DEVICES=''" in crash_log.splitlines()[0]
    ok = by_key[0, 0]
    assert (ray_out / "round0" / "result-0.txt").read_text() == f"{ray_out.resolve()}#0\t{ok['score']!r}\n"
    # populationbased: round 1 warm-started from round 0's best (its log header holds the command).
    assert f"--model_path {ray_out.resolve() / 'round0' / 'model-0'}" in (ray_out / "round1" / "log-0.info").read_text()

    # best_model: the same winner, copied from the trial's model dir.
    ray_best = json.loads((ray_out / "best_model" / "model.json").read_text())
    local_best = json.loads((local_out / "best_model" / "model.json").read_text())
    assert (ray_best["values"], ray_best["score"]) == (local_best["values"], local_best["score"])

    # The timed-out trial's process is gone (killed on the worker with its process group).
    hung_dir = str(ray_out.resolve() / "round1" / "model-1")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                assert hung_dir not in (proc / "cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                pass


def test_backend_ray_without_ray_installed_says_how_to_install(tmp_path):
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    # sys.modules["ray"] = None makes `import ray` fail as if the package were absent.
    code = ("import sys; sys.modules['ray'] = None; from autoft.tuner.cli import main; "
            "sys.argv[0] = 'autofinetune'; main()")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code, str(TOY), "--param_file", "hp.yaml", "--cpu_slots", "2",
                           "--backend", "ray", "--output_dir", "out"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert_clean_error(proc, "--backend ray needs the ray package", "pip install 'autoft[ray]'")
    assert not (tmp_path / "out").exists()

    stray = run_cli([TOY, "--param_file", "hp.yaml", "--cpu_slots", "1", "--ray_address", "auto"], tmp_path)
    assert_clean_error(stray, "--ray_address auto needs --backend ray")


def test_ray_worker_loss_fails_only_its_trial_and_no_trial_process_or_grandchild_survives(tmp_path):
    """A Ray worker killed with -9 while its trial runs (what a node loss does to the tasks on it):
    that trial is FAILED with Ray's reason, the search finishes; a trial's grandchild is ended on
    the worker when the trial exits."""
    pytest.importorskip("ray", reason="--backend ray needs the optional ray package (pip install 'autoft[ray]')")
    import signal
    import subprocess

    from tests.test_tuner_search import alive, start_tuner, starts, wait_for

    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    rec, gate = tmp_path / "rec", tmp_path / "gate"
    tuner = start_tuner([TOY, "--param_file", "hp.yaml", "--output_dir", "out", "--cpu_slots", "2", "--popsize", "2",
                         "--round", "1", "--seed", "5", "--backend", "ray", "record_dir", rec, "block_at", "r0i1",
                         "gate", gate, "grandchild_at", "r0i0"], tmp_path, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rec.exists() and any(s["tag"] == "r0i1" for s in starts(rec)), "trial r0i1 to start",
                 timeout=300)
        held = next(s for s in starts(rec) if s["tag"] == "r0i1")
        worker = int(Path(f"/proc/{held['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
        os.kill(worker, signal.SIGKILL)
        out, err = tuner.communicate(timeout=300)
    finally:
        gate.write_text("open")
        if tuner.poll() is None:
            tuner.kill()
            tuner.wait()
    assert tuner.returncode == 0, err
    _, trials = read_journal(tmp_path / "out" / "journal.jsonl")
    by = {t["idx"]: t for t in trials}
    assert by[0]["status"] == "OK"
    assert by[1]["status"] == "FAILED" and by[1]["reason"].startswith("Ray task failed ("), by[1]
    assert not alive(held["pid"], held["argv"][0])  # died with its worker (parent-death signal)
    grandchild = json.loads((rec / "r0i0-grandchild.json").read_text())["pid"]
    wait_for(lambda: not alive(grandchild, f"grandchild-of-r0i0-in-{rec}"), "r0i0's grandchild to be gone", timeout=30)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_documented_token_cluster_recipe_works_and_a_missing_token_or_dead_address_is_explained(tmp_path):
    """docs/tuner.md's cluster recipe on current Ray (token authentication): `RAY_AUTH_MODE=token
    ray start --head`, then the tuner with the token joins it; without the token the refusal says
    what to set (not "start a cluster"); an address where nothing answers gives up at once."""
    pytest.importorskip("ray", reason="--backend ray needs the optional ray package (pip install 'autoft[ray]')")
    import shutil
    import signal
    import subprocess

    ray_cli = shutil.which("ray") or str(Path(os.sys.executable).with_name("ray"))
    (tmp_path / "hp.yaml").write_text(SPACE_YAML)
    import tempfile

    head_home, no_token_home = tmp_path / "head_home", tmp_path / "empty_home"
    # Ray's socket paths must stay under 107 bytes: a short temp dir, not pytest's deep one.
    temp_dir = Path(tempfile.mkdtemp(prefix="autoft-ray-"))
    for d in (head_home, no_token_home):
        d.mkdir()
    port = _free_port()
    head_env = dict(os.environ, HOME=str(head_home), RAY_AUTH_MODE="token")
    generated = subprocess.run([ray_cli, "get-auth-token", "--generate"], env=head_env, capture_output=True, text=True,
                               timeout=120)
    assert generated.returncode == 0, generated.stderr[-2000:]
    started = subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2",
                              "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
                             env=head_env, capture_output=True, text=True, timeout=300)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        token = (head_home / ".ray" / "auth_token").read_text().strip()
        search = [TOY, "--param_file", "hp.yaml", "--cpu_slots", "2", "--popsize", "2", "--round", "1", "--seed", "5",
                  "--backend", "ray", "--ray_address", f"127.0.0.1:{port}"]
        without = dict(os.environ, HOME=str(no_token_home))
        without.pop("RAY_AUTH_MODE", None)
        refused = run_cli([*search, "--output_dir", "refused"], tmp_path, env=without, timeout=300)
        assert_clean_error(refused, "RAY_AUTH_MODE=token", "RAY_AUTH_TOKEN", "token authentication")
        assert "Start a cluster" not in refused.stderr
        joined = run_cli([*search, "--output_dir", "joined"], tmp_path, timeout=300,
                         env=dict(without, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token))
        assert joined.returncode == 0, joined.stderr[-3000:]
        assert f"the Ray cluster at 127.0.0.1:{port}" in joined.stdout
    finally:
        for p in Path("/proc").iterdir():  # this test's cluster only (its processes name its temp dir)
            try:
                if p.name.isdigit() and str(temp_dir) in (p / "cmdline").read_bytes().decode("utf-8", "replace"):
                    os.kill(int(p.name), signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp_dir, ignore_errors=True)
    dead = run_cli([*search[:-1], "127.0.0.1:1", "--output_dir", "dead"], tmp_path, timeout=120)
    assert_clean_error(dead, "nothing answers at 127.0.0.1:1")
