"""``--keep_models K``: the real CLI runs the toy search (populationbased, 4 trials a round) and after
every round only the K best trials' model dirs and the next round's donors may be left. What a
round left is seen by the next round's trials themselves: the toy's start record lists the
model dirs of earlier rounds that exist when it starts."""

import csv
import json
import shutil

from tests.test_tuner_cli import TOY, run_cli
from tests.test_tuner_search import model_dirs, read_journal, rel, round_records, search, starts

# r0i2 crashes before saving anything; r1i1 saves its model but never reports (FAILED, dir to delete).
TRAILING = ["crash_at", "r0i2", "silent_at", "r1i1"]
FLAGS = ["--cpu_slots", "2", "--popsize", "4", "--seed", "2", "--keep_models", "1", "--tuning_strategy", "pshe2"]  # its seed-2 rounds


def expected_keep(trials, k):
    """The best successful trial of rounds <= k and round k's donors (its best floor(4/2) = 2
    successful trials), computed here from the journal's trial records alone."""
    ok = [t for t in trials if t["round"] <= k and t["status"] == "OK"]
    best = min(ok, key=lambda t: (-t["score"], t["trial"]))
    donors = sorted((t for t in ok if t["round"] == k), key=lambda t: (-t["score"], t["idx"]))[:2]
    return {rel(best["model_dir"])}, {rel(t["model_dir"]) for t in donors}


def test_keep_models_1_leaves_the_best_and_the_next_donors_and_a_resume_finishes_an_interrupted_deletion(tmp_path):
    proc = search(tmp_path, *FLAGS, "--round", "3", rec="rec", extra=TRAILING)
    assert proc.returncode == 0, proc.stderr
    out, rec = tmp_path / "out", tmp_path / "rec"
    journal = out / "journal.jsonl"
    _, trials = read_journal(journal)
    rounds = round_records(journal)
    assert [t["status"] for t in sorted(trials, key=lambda t: t["trial"])].count("FAILED") == 2

    best_is_not_a_donor = False
    left = []  # how many model dirs each round left
    for k in range(3):
        best, donors = expected_keep(trials, k)
        best_is_not_a_donor |= not best <= donors
        left.append(len(best | donors))
        assert {rel(d) for d in rounds[k]["donors"]} == donors
        # Every trial of round k+1 started with exactly the best and the donors left of rounds <= k.
        if k < 2:
            seen = [s["models_seen"] for s in starts(rec) if s["tag"].startswith(f"r{k + 1}i")]
            assert len(seen) == 4 and all(set(m) == best | donors for m in seen), seen
    # The seed is chosen so that some round keeps an earlier round's best beside its donors.
    assert best_is_not_a_donor
    best, donors = expected_keep(trials, 2)
    assert model_dirs(out) == best | donors

    # The journal lists every deleted dir once, before deleting it; the crashed trial had none.
    deleted = [rel(d) for k in range(3) for d in rounds[k]["deleted"]]
    saved = {rel(t["model_dir"]) for t in trials if t["idx"] != 2 or t["round"] != 0}
    assert len(deleted) == len(set(deleted)) and set(deleted) == saved - best - donors
    assert all(rounds[k]["freed_bytes"] > 0 for k in range(3))
    lines = [x for x in proc.stdout.splitlines() if x.startswith("--keep_models 1: deleted ")]
    assert [int(x.split()[3]) for x in lines] == [len(rounds[k]["deleted"]) for k in range(3)]
    assert [x.rsplit("; ", 1)[1] for x in lines] == [f"{n} kept." for n in left]
    assert all(" freed " in x and " KB;" in x for x in lines)

    kept = {(int(r["round"]), int(r["trial"])): r["model_kept"] for r in csv.DictReader((out / "trials.csv").open())}
    for t in trials:
        want = "none" if (t["round"], t["idx"]) == (0, 2) else \
            "deleted" if rel(t["model_dir"]) in deleted else "yes"
        assert kept[t["round"], t["idx"]] == want, (t["round"], t["idx"])
    best_score = max(t["score"] for t in trials if t["status"] == "OK")
    assert json.loads((out / "best_model" / "model.json").read_text())["score"] == best_score

    # A kill between journaling round 2's deletions and doing them: one deleted dir is back.
    back = out / deleted[-1]
    back.mkdir(parents=True)
    shutil.copy(out / next(iter(best)) / "model.json", back / "model.json")
    # Resumed with one more round: the deletion is finished first, and round 3 warm-starts from
    # round 2's donors, which were kept after the last round for this (the toy fails a trial
    # whose --model_path holds no model).
    more = run_cli([TOY, "--param_file", "hp.yaml", "--output_dir", "out", *FLAGS, "--round", "4", "--resume",
                    "record_dir", rec, *TRAILING], tmp_path, timeout=300)
    assert more.returncode == 0, more.stderr
    assert not back.exists()
    _, trials = read_journal(journal)
    assert len(trials) == 16 and all(t["status"] == "OK" for t in trials if t["round"] == 3)
    r3 = [s for s in starts(rec) if s["tag"].startswith("r3i")]
    assert len(r3) == 4 and all(s["argv"][2] in {str(out.resolve() / d) for d in donors} for s in r3)
    assert all(set(s["models_seen"]) == best | donors for s in r3)
    best, donors = expected_keep(trials, 3)
    assert model_dirs(out) == best | donors
    assert more.stdout.count("--keep_models 1: deleted ") == 1  # replayed rounds are not pruned again
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [r["model_kept"] for r in rows].count("yes") == len(best | donors)
