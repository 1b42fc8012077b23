"""The search itself: rounds of ask -> run trials on the pool -> journal -> tell, then the outputs.

Round k lives in ``<output_dir>/round<k>/``; trial idx writes ``log-<idx>.info`` and
``model-<idx>/`` there (PaddleHub 1.4's layout) and its score goes to ``result-<idx>.txt``.
The evaluator decides the extra flags: fulltrail never adds any; populationbased (alias
modelbased) gives trial t of round k >= 1 ``--epochs=1 --model_path <donor>``, the donors
being the best floor(popsize/2) (>= 1) successful, non-empty model dirs of the previous round.

After each round a ``"type": "round"`` journal line records the donors for the next round and,
with ``--keep_models K``, the finished trials' model dirs that are deleted to bound the disk:
every one but the K best successful trials so far and those donors. The line is written
before anything is deleted, so a resume knows what is gone (and finishes a deletion that a
kill interrupted) and takes the donors from it instead of looking at the disk.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from autoft.errors import AutoftError
from autoft.tuner import output
from autoft.tuner.devices import Slot
from autoft.tuner.journal import JOURNAL_NAME, Journal
from autoft.tuner.runner import OK, TrialBackend, TrialOutcome, TrialPool, TrialSpec, kill_orphans

EVALUATORS = {"fulltrail": "fulltrail", "populationbased": "populationbased", "modelbased": "populationbased"}
RUNNING_NAME = ".running.json"


@dataclass
class SearchConfig:
    """A parsed command line (see autoft.tuner.cli)."""

    script: str
    param_file: str
    popsize: int
    rounds: int
    output_dir: Path
    evaluator: str  # canonical: fulltrail | populationbased
    tuning_strategy: str  # hazero | pshe2 | random
    options: List[str]  # trailing "--key=value" flags, in order
    slots: List[Slot]
    seed: Optional[int] = None
    resume: bool = False
    trial_timeout: Optional[float] = None
    python: str = sys.executable
    command: List[str] = field(default_factory=list)  # the command that resumes this search
    backend: str = "local"  # local | ray
    ray_address: Optional[str] = None  # None: a local Ray started by the tuner
    cpu_slots: Optional[int] = None  # for the Ray backend (the local pool has them as slots)
    trials_per_gpu: int = 1
    keep_models: Optional[int] = None  # None: keep every trial's model dir (PaddleHub's behaviour)


def make_backend(cfg: SearchConfig, out: Path) -> TrialBackend:
    """The local pool of slots, or Ray (``--backend ray``); both run trials the same way."""
    if cfg.backend == "ray":
        from autoft.tuner.ray_backend import RayPool

        return RayPool(cfg.ray_address, cfg.cpu_slots, cfg.trials_per_gpu, timeout=cfg.trial_timeout,
                       running_file=out / RUNNING_NAME)
    return TrialPool(cfg.slots, timeout=cfg.trial_timeout, running_file=out / RUNNING_NAME)


def _trial_argv(cfg: SearchConfig, model_dir: Path, hparams: Dict[str, Any], donor: Optional[str]) -> List[str]:
    """PaddleHub 1.4's trial command (reference §3), values formatted with str()."""
    argv = [cfg.python, "-u", cfg.script]
    if donor is not None:
        argv += ["--epochs=1", "--model_path", donor]
    argv.append(f"--saved_params_dir={model_dir}")
    argv += [f"--{name}={value}" for name, value in hparams.items()]
    argv += cfg.options
    return argv


def _donors(records: Sequence[Dict[str, Any]], popsize: int) -> List[str]:
    """The best floor(popsize/2) (>= 1) successful trials of one round that saved a model."""
    ok = [r for r in records if r["status"] == OK and _saved_something(Path(r["model_dir"]))]
    ok.sort(key=lambda r: (-r["score"], r["idx"]))
    return [r["model_dir"] for r in ok[: max(1, popsize // 2)]]


def _saved_something(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _keep_set(records: Sequence[Dict[str, Any]], keep: int, donors: Sequence[str]) -> set:
    """Model dirs that --keep_models ``keep`` must keep: the ``keep`` best successful trials so far
    (the best first, ties to the earlier trial, as output.best_record) and the next round's donors."""
    ok = sorted((r for r in records if r["status"] == OK), key=lambda r: (-r["score"], r["trial"]))
    return {r["model_dir"] for r in ok[:keep]} | set(donors)


def _to_delete(records: Sequence[Dict[str, Any]], keep: int, donors: Sequence[str]) -> List[str]:
    """The finished trials' model dirs (present on this machine, not deleted yet) outside the keep set."""
    kept = _keep_set(records, keep, donors)
    return [r["model_dir"] for r in sorted(records, key=lambda r: r["trial"])
            if r["model_dir"] not in kept and r.get("model_deleted") is None and Path(r["model_dir"]).exists()]


def _disk_bytes(path: Path) -> int:
    """Disk blocks used by the files under ``path`` (what deleting it frees), in bytes."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size, unit = n / 1024, "KB"
    for bigger in ("MB", "GB", "TB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def _delete_dirs(dirs: Sequence[str]) -> List[str]:
    """rmtree each dir (a missing one is fine: deleted before a kill); returns the errors."""
    errors = []
    for d in dirs:
        try:
            shutil.rmtree(d)
        except FileNotFoundError:
            pass
        except OSError as exc:
            errors.append(f"{d}: {exc.strerror or exc}")
    return errors


def _mark_deleted(records: Sequence[Dict[str, Any]], deleted: Sequence[str], k: int) -> None:
    """Note in the in-memory records (for trials.csv) which model dirs were deleted after round ``k``."""
    gone = set(deleted)
    for r in records:
        if r["model_dir"] in gone and r.get("model_deleted") is None:
            r["model_deleted"] = k


def _clean_leftovers(round_dir: Path, idx: int) -> None:
    """Remove what an unfinished trial (tuner killed mid-trial) left, before it runs again."""
    shutil.rmtree(round_dir / f"model-{idx}", ignore_errors=True)
    for name in (f"log-{idx}.info", f"result-{idx}.txt"):
        (round_dir / name).unlink(missing_ok=True)


def _hparams_line(hparams: Dict[str, Any]) -> str:
    return " ".join(f"{k}={output.fmt_value(v)}" for k, v in hparams.items())


def run_search(cfg: SearchConfig) -> int:
    """Run (or resume) a search; returns the exit code (0, or 1 when no trial succeeded)."""
    backends: List[TrialBackend] = []  # made inside once the configuration is checked; closed here
    try:
        return _search(cfg, backends)
    finally:
        for backend in backends:
            backend.close()


def _search(cfg: SearchConfig, backends: List[TrialBackend]) -> int:
    from autoft.search import SearchSpace, make_strategy

    space = SearchSpace.load(cfg.param_file)
    out = Path(cfg.output_dir)
    journal_path = out / JOURNAL_NAME
    header = {
        "script": cfg.script,
        "space": [{"name": p.name, "init_value": p.init_value, "type": p.type, "low": p.low, "high": p.high,
                   "scale": p.scale} for p in space.params],
        "popsize": cfg.popsize,
        "rounds": cfg.rounds,
        "evaluator": cfg.evaluator,
        "tuning_strategy": cfg.tuning_strategy,
        "seed": cfg.seed,
        "options": cfg.options,
        "param_file": str(cfg.param_file),
    }
    done: Dict[tuple, Dict[str, Any]] = {}
    if cfg.resume:
        journal, stored, trials = Journal.resume(journal_path, header)
        seed = stored["seed"]
        for rec in trials:
            done[(rec["round"], rec["idx"])] = rec
        backends.append(make_backend(cfg, out))
        killed = kill_orphans(out / RUNNING_NAME)
        for k, rr in sorted(journal.rounds.items()):
            _mark_deleted(list(done.values()), rr.get("deleted", []), k)
            # Journaled as deleted but still here: the previous run died mid-deletion; finish it.
            _delete_dirs(rr.get("deleted", []))
        print(f"Resuming {journal_path}: {len(done)} finished trial(s) in the journal"
              + (f"; killed {len(killed)} trial process(es) left by the previous run" if killed else "") + ".")
    else:
        if journal_path.exists():
            raise AutoftError(
                f"--output_dir {out} already holds a search ({journal_path}); add --resume to continue it "
                f"or choose another --output_dir"
            )
        seed = cfg.seed if cfg.seed is not None else int(np.random.SeedSequence().entropy % (2**32))
        # The strategy is built before anything is written, so a refused configuration
        # (e.g. HAZero with one hyper-parameter) leaves no half-made output dir behind.
        make_strategy(cfg.tuning_strategy, space.init_point(), cfg.popsize, seed)
        backends.append(make_backend(cfg, out))  # e.g. Ray unreachable: refused before anything is written
        out.mkdir(parents=True, exist_ok=True)
        journal = Journal.create(journal_path, {**header, "seed": seed})
    strategy = make_strategy(cfg.tuning_strategy, space.init_point(), cfg.popsize, seed)
    pool = backends[0]
    live = output.LiveOutputs(out, space.names, cfg.popsize, space=space,
                              title=f"autofinetune {Path(cfg.script).name}: {cfg.tuning_strategy} / {cfg.evaluator}")
    if done:  # a resumed search shows its journaled trials right away
        live.trial_finished(list(done.values()))
    records: List[Dict[str, Any]] = []
    donors: List[str] = []
    total = cfg.popsize * cfg.rounds
    print("PaddleHub Autofinetune starts.")
    print(f"{cfg.tuning_strategy} / {cfg.evaluator}: {cfg.rounds} round(s) x {cfg.popsize} trial(s) on "
          f"{pool.describe()}, seed {seed}, output {out}")
    from tqdm import tqdm

    bar = tqdm(total=total, unit="trial", dynamic_ncols=True, disable=None, file=sys.stderr)
    bar.update(min(total, len(done)))
    stopped_early = ""
    planned: Dict[int, Dict[str, Any]] = {}  # trial number -> what was asked, until it finishes
    noted: List[str] = []
    try:
        for k in range(cfg.rounds):
            if strategy.should_stop():
                stopped_early = f"{cfg.tuning_strategy} converged after {k} round(s) (its stop criterion fired)"
                break
            points = strategy.ask()
            round_dir = out / f"round{k}"
            specs: List[TrialSpec] = []
            for idx in range(cfg.popsize):
                t = k * cfg.popsize + idx
                hparams = space.decode(points[idx])
                rec = done.get((k, idx))
                if rec is not None:
                    if not np.allclose(rec["point"], points[idx], rtol=0, atol=1e-9):
                        raise AutoftError(
                            f"--resume: {journal_path} does not replay: round {k} trial {idx} was at "
                            f"{rec['point']} but the strategy now asks {points[idx].tolist()} "
                            f"(another version of numpy/cma, or an edited journal?). Start a new --output_dir."
                        )
                    continue
                donor = donors[t % len(donors)] if (cfg.evaluator == "populationbased" and donors) else None
                model_dir = (round_dir / f"model-{idx}").resolve()
                _clean_leftovers(round_dir, idx)
                specs.append(TrialSpec(
                    number=t, round=k, idx=idx,
                    argv=_trial_argv(cfg, model_dir, hparams, donor),
                    log_path=round_dir / f"log-{idx}.info", model_dir=model_dir,
                    result_file=round_dir / f"result-{idx}.txt", trial_id=f"{out.resolve()}#{t}",
                ))
                planned[t] = {"point": points[idx].tolist(), "hparams": hparams, "model_path": donor}

            def finished(o: TrialOutcome) -> None:
                s = o.spec
                rec = {"round": s.round, "idx": s.idx, "trial": s.number, **planned[s.number],
                       "score": o.score, "status": o.status, "reason": o.reason, "seconds": round(o.seconds, 3),
                       "log": str(s.log_path), "model_dir": str(s.model_dir), "slot": o.slot}
                if o.note:
                    rec["note"] = o.note
                else:  # for trials.csv's model_kept (a dir on another Ray node cannot be looked at)
                    rec["saved"] = _saved_something(s.model_dir)
                journal.append(rec)
                done[(s.round, s.idx)] = rec
                live.trial_finished(list(done.values()))
                if o.status == OK:
                    msg = (f"round {s.round} trial {s.idx}: score {o.score:.6g}  {_hparams_line(rec['hparams'])}  "
                           f"({o.seconds:.1f}s)")
                else:
                    msg = (f"round {s.round} trial {s.idx}: FAILED, {o.reason}; see {s.log_path}  "
                           f"({_hparams_line(rec['hparams'])})")
                if o.note and not noted:  # e.g. no shared filesystem: say it once, not per trial
                    msg += f"\n  note: {o.note}"
                    noted.append(o.note)
                bar.write(msg, file=sys.stdout)
                bar.update(1)

            if specs:
                pool.run(specs, finished)
            this_round = [done[(k, idx)] for idx in range(cfg.popsize)]
            records += this_round
            rewards = [1.0 - r["score"] if r["status"] == OK else 1.0 for r in this_round]
            strategy.tell(points, rewards)
            # Replayed rounds (--resume) are appended to the VisualDL log, which open() emptied, so
            # it holds each round once; only rounds that ran trials redraw search.png.
            live.round_finished(k, this_round, records, plot=bool(specs))
            local = output.best_record(this_round)
            if local is None:
                bar.write(f"Every trial of round {k} failed (see the FAILED lines above).", file=sys.stdout)
            else:
                bar.write(f"The local best eval value in the {k}-th round is {local['score']}.  "
                          f"({_hparams_line(local['hparams'])})", file=sys.stdout)
            replayed = journal.rounds.get(k)
            if replayed is not None:
                # --resume: the donors this round had (whatever is on disk now); its deletions were
                # applied when the journal was read.
                if cfg.evaluator == "populationbased":
                    donors = list(replayed["donors"])
            else:
                if cfg.evaluator == "populationbased":
                    new = _donors(this_round, cfg.popsize)
                    if new:
                        donors = new
                    elif k + 1 < cfg.rounds:
                        bar.write(f"Round {k} left no successful saved model: the next round "
                                  + ("keeps the previous donors." if donors else "trains from scratch."),
                                  file=sys.stdout)
                _end_round(cfg, journal, k, records, donors, bar)
                live.trial_finished(list(done.values()))  # trials.csv shows the deletions
    except KeyboardInterrupt:
        bar.close()
        hint = shlex.join(cfg.command) if cfg.command else "the same command with --resume"
        print(f"\nInterrupted: running trials were stopped; {len(done)} finished trial(s) are in {journal_path}.\n"
              f"Continue with: {hint}", file=sys.stderr)
        _write_tables(out, space.names, list(done.values()))
        live.close()
        raise
    except BaseException:
        live.close()
        raise
    bar.close()
    print("PaddleHub Autofinetune ends." + (f" ({stopped_early})" if stopped_early else ""))
    return _finish(cfg, out, space, records, live)


def _end_round(cfg: SearchConfig, journal: Journal, k: int, records: List[Dict[str, Any]], donors: List[str],
               bar) -> None:
    """Journal round ``k`` (its donors for the next round) and, with --keep_models, delete the model
    dirs outside the keep set: journaled first, so a kill mid-deletion leaves a consistent resume.
    The donors are kept even after the last round: a resume with a larger --round warm-starts from them."""
    rec: Dict[str, Any] = {"round": k, "donors": list(donors)}
    if cfg.keep_models is None:
        journal.append_round(rec)
        return
    doomed = _to_delete(records, cfg.keep_models, donors)
    freed = sum(_disk_bytes(Path(d)) for d in doomed)
    journal.append_round({**rec, "keep_models": cfg.keep_models, "deleted": doomed, "freed_bytes": freed})
    _mark_deleted(records, doomed, k)  # the journal now says so, even if a Ctrl-C stops the deletion
    errors = _delete_dirs(doomed)
    kept = sum(1 for r in records if r.get("model_deleted") is None and Path(r["model_dir"]).exists())
    bar.write(f"--keep_models {cfg.keep_models}: deleted {len(doomed)} model dir(s) of finished trials, freed "
              f"{_human_bytes(freed)}; {kept} kept." + (f" Could not delete: {'; '.join(errors)}" if errors else ""),
              file=sys.stdout)


def _write_tables(out: Path, names: Sequence[str], records: List[Dict[str, Any]]) -> None:
    output.write_trials_csv(out / "trials.csv", names, records)


def _finish(cfg: SearchConfig, out: Path, space, records: List[Dict[str, Any]], live: output.LiveOutputs) -> int:
    names = space.names
    best = output.best_record(records)
    _write_tables(out, names, records)
    output.write_log_file(out / "log_file.txt", names, records, best)
    output.write_best_hparams(out / "best_hparams.yaml", best)
    note = live.close()  # every round is already in visualization/
    title = (f"autofinetune {Path(cfg.script).name}: {cfg.tuning_strategy} / {cfg.evaluator}, "
             f"{len(records)} trials" + (f", best {best['score']:.4g}" if best else ", none succeeded"))
    output.plot_search(out / "search.png", names, records, space=space, title=title)
    print(output.summary_table(names, records))
    if note:
        print(note)
    if best is None:
        print(f"No trial succeeded: every trial FAILED (reasons above; logs in {out}/round*/log-*.info).")
        return 1
    print("The final best hyperparameters:")
    for n in names:
        print(f"{n}={best['hparams'][n]}")
    print(f"The final best eval score is {best['score']}.")
    print(output.copy_best_model(best, out))
    print(f"Search details: {out / 'trials.csv'}, {out / 'search.png'}, {out / 'log_file.txt'}.")
    return 0

