"""How the Ray backend stops a trial (stop_trial: a marker file the worker polls, Ray's cancel, and a
forced cancel for a task that outlives the graceful stop), without a Ray cluster: the worker function
runs in this process, the pool's Ray is a recording fake."""

import sys
import threading
import time

import pytest

pytest.importorskip("ray", reason="--backend ray needs the optional ray package")

from autoft.tuner import ray_backend  # noqa: E402
from autoft.tuner.records import PRUNED, TrialSpec  # noqa: E402


def spec(tmp_path, argv):
    return TrialSpec(3, 0, 3, argv, tmp_path / "round0" / "log-3.info", tmp_path / "round0" / "model-3",
                     tmp_path / "round0" / "result-3.txt", "t#3")


def test_the_worker_ends_its_trial_when_the_stop_marker_appears(tmp_path):
    s = spec(tmp_path, [sys.executable, "-c", "import time; time.sleep(120)"])
    stop_file = tmp_path / "round0" / "stop-3"
    payload = {"number": 3, "round": 0, "idx": 3, "argv": s.argv, "log_path": str(s.log_path),
               "model_dir": str(s.model_dir), "trial_id": s.trial_id, "relaunch": False,
               "intermediate_file": None, "stop_file": str(stop_file)}
    s.log_path.parent.mkdir(parents=True)
    out = {}
    worker = threading.Thread(target=lambda: out.update(
        ray_backend.run_trial_on_worker(payload, False, 1.0, {}, None, str(tmp_path))))
    worker.start()
    time.sleep(1.0)
    assert worker.is_alive()  # the trial sleeps for 120 s
    stop_file.write_text("stop\n")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert out["returncode"] is not None and out["returncode"] != 0  # ended by a signal, not finished
    assert out["seconds"] < 30


class FakeRay:
    def __init__(self):
        self.cancels = []

    def cancel(self, ref, force=False):
        self.cancels.append((ref, force))


def test_stop_trial_writes_the_marker_cancels_and_forces_a_straggler(tmp_path, monkeypatch):
    pool = ray_backend.RayPool.__new__(ray_backend.RayPool)  # no cluster: only the stopping state
    pool.ray = FakeRay()
    s = spec(tmp_path, ["true"])
    s.log_path.parent.mkdir(parents=True)
    pool._refs = {"ref-3": s}
    pool._stopped, pool._stop_asked = {}, {}
    now = [1000.0]
    monkeypatch.setattr(ray_backend.time, "monotonic", lambda: now[0])

    assert pool.stop_trial(3, PRUNED, "pruned at step 10")
    assert (tmp_path / "round0" / "stop-3").read_text() == "stop\n"
    assert pool.ray.cancels == [("ref-3", False)]
    assert not pool.stop_trial(3, PRUNED, "again")  # already being stopped
    now[0] += ray_backend.TERM_GRACE_SECONDS + 4
    pool._force_stragglers()
    assert pool.ray.cancels == [("ref-3", False)]  # still within the grace
    now[0] += 2
    pool._force_stragglers()
    pool._force_stragglers()
    assert pool.ray.cancels == [("ref-3", False), ("ref-3", True)]  # forced once
