"""The search itself: rounds of ask -> run trials on the backend -> journal -> tell, then the outputs.

``SearchRun`` is the tuner core: it owns the configuration, the journal, the strategy, the
evaluator (fulltrail / populationbased, autoft.tuner.evaluators), the backend (local pool or
Ray) and the finished trials' records (autoft.tuner.records.TrialRecord), and every guarantee
lives in one of its methods: replay on resume, journaling before use, the round line before
--keep_models deletes, the outputs at the end.

Round k lives in ``<output_dir>/round<k>/``; trial idx writes ``log-<idx>.info`` and
``model-<idx>/`` there (PaddleHub 1.4's layout), its score goes to ``result-<idx>.txt`` and its
intermediate results (report_intermediate_result) to ``intermediate-<idx>.txt``.

After each round a ``"type": "round"`` journal line records the donors for the next round and,
with ``--keep_models K``, the finished trials' model dirs that are deleted to bound the disk:
every one but the K best successful trials so far and those donors. The line is written
before anything is deleted, so a resume knows what is gone (and finishes a deletion that a
kill interrupted) and takes the donors from it instead of looking at the disk.

The seam for watching trials (e.g. a pruner): ``SearchConfig.watcher``, a TrialWatcher. While
trials run, ``watcher.on_tick(running, run.stop_trial)`` is called about every
``tick_seconds`` with the running trials (RunningTrial: number, start time, intermediate
results so far); ``run.stop_trial(number, status, reason)`` ends that trial's process group
and records it with ``status`` (e.g. PRUNED), ``reason`` and its last intermediate (step,
score); its slot starts the round's next trial at once. ``watcher.trial_finished(record)`` is
called for every finished trial before it is journaled (so it may complete the record, as the
pruner does for a PRUNED one), replayed ones first on --resume, in trial order. --pruner's
watcher is autoft.tuner.pruning.PruningMonitor.

--retries: a crashed attempt (autoft.tuner.retries decides) is journaled as a ``"type": "attempt"``
line instead of a trial line, and its next attempt runs once the batch it crashed in has finished,
with its own log (``log-<idx>.attempt<a>.info``); a resume continues the count.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence

import numpy as np

from autoft import atomic
from autoft.errors import AutoftError
from autoft.tuner import output, retries
from autoft.tuner.devices import Slot
from autoft.tuner.evaluators import EVALUATORS, FullTrail, make_evaluator  # noqa: F401 - EVALUATORS re-exported
from autoft.tuner.gpu_memory import precheck
from autoft.tuner.journal import JOURNAL_NAME, Journal
from autoft.tuner.lock import OutputLock
from autoft.tuner.pruners import PrunerConfig
from autoft.tuner.pruning import strategy_score
from autoft.tuner.records import (
    FAILED,
    OK,
    OUT_OF_GPU_MEMORY,
    PRUNED,
    RunningTrial,
    TrialOutcome,
    TrialRecord,
    TrialSpec,
    last_log_line,
    log_tail,
    ran_out_of_gpu_memory,
)
from autoft.tuner.runner import TrialBackend, TrialPool, kill_orphans

RUNNING_NAME = ".running.json"
RESUME_SUFFIX = ".resume"  # train.py keeps a trial's resume state in <saved_params_dir>.resume/
CHECK_TIMEOUT_SECONDS = 600
OOM_FIXES = ("a smaller --batch_size with --grad_accum (the same effective batch), --amp, "
             "or fewer --trials_per_gpu")
_ROUND_PATH = re.compile(r"(?:^|/)(round\d+/[^/]+)$")


class TrialWatcher(Protocol):
    """Watches running trials and may stop them (see the module docstring)."""

    def on_tick(self, running: Sequence[RunningTrial], stop_trial: Callable[[int, str, str], bool]) -> None: ...

    def trial_finished(self, record: TrialRecord) -> None: ...


@dataclass
class SearchConfig:
    """A parsed command line (see autoft.tuner.cli)."""

    script: str
    param_file: str
    popsize: int
    rounds: int
    output_dir: Path
    evaluator: str  # canonical: fulltrail | populationbased
    tuning_strategy: str  # hazero | pshe2 | random | tpe | auto
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
    watcher: Optional[TrialWatcher] = None  # e.g. a pruner
    pruner: PrunerConfig = field(default_factory=PrunerConfig)  # --pruner (none: the header does not name it)
    retries: int = 0  # --retries: a crashed trial runs again up to this many times
    tick_seconds: float = 1.0  # how often the watcher's on_tick runs while trials run


def make_backend(cfg: SearchConfig, out: Path) -> TrialBackend:
    """The local pool of slots, or Ray (``--backend ray``); both run trials the same way."""
    if cfg.backend == "ray":
        from autoft.tuner.ray_backend import RayPool

        return RayPool(cfg.ray_address, cfg.cpu_slots, cfg.trials_per_gpu, timeout=cfg.trial_timeout,
                       running_file=out / RUNNING_NAME)
    return TrialPool(cfg.slots, timeout=cfg.trial_timeout, running_file=out / RUNNING_NAME)


def _saved_something(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


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


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB'."""
    if n < 1024:
        return f"{int(n)} B"
    size, unit = n / 1024, "KB"
    for bigger in ("MB", "GB", "TB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def _delete_dirs(dirs: Sequence[Path]) -> List[str]:
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


def _hparams_line(hparams: Dict[str, Any]) -> str:
    return " ".join(f"{k}={output.fmt_value(v)}" for k, v in hparams.items())


def reward_of(record: TrialRecord) -> float:
    """What the strategy is told (it minimises): 1 - score for an OK trial, 1 - its best intermediate
    score when stopped for a PRUNED one (autoft.tuner.pruning.strategy_score), else 1 (PaddleHub's
    score 0 for a crashed trial)."""
    score = strategy_score(record.status, record.score, record.last_score)
    return 1.0 - score if score is not None else 1.0


class Console:
    """The search's console lines (through the progress bar, so they do not tear it)."""

    def __init__(self, total: int, done: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="trial", dynamic_ncols=True, disable=None, file=sys.stderr)
        self.bar.update(min(total, done))

    def say(self, msg: str) -> None:
        self.bar.write(msg, file=sys.stdout)

    def trial_done(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class SearchRun:
    """One run of the tuner over one output dir: ``run()`` opens or resumes it, runs the
    remaining rounds and writes the outputs; ``close()`` releases the backend."""

    def __init__(self, cfg: SearchConfig):
        from autoft.search import SearchSpace

        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.root = self.out.resolve()
        self.lock = OutputLock(self.out)
        self.space = SearchSpace.load(cfg.param_file)
        self.journal_path = self.out / JOURNAL_NAME
        self.records: Dict[int, TrialRecord] = {}  # finished (journaled) trials by number
        self.evaluator: FullTrail = make_evaluator(cfg.evaluator, cfg.popsize)
        self.backend: Optional[TrialBackend] = None
        self.journal: Optional[Journal] = None
        self.console: Optional[Console] = None
        self.live: Optional[output.LiveOutputs] = None
        self.noted: List[str] = []
        self.checked = False  # the script's --check ran (autoft's train.py) or is not needed
        self.disk_said = False
        self._planned: Dict[int, Dict[str, Any]] = {}  # trial number -> what was asked, until it finishes
        self._attempts: Dict[int, int] = {}  # trial number -> failed attempts journaled (--retries)
        self._retry: List[TrialSpec] = []  # the next attempts of this batch's retried trials

    # ---- paths ---------------------------------------------------------------------------------
    # The journal stores paths relative to the output dir, so a moved output dir resumes and its
    # donors are found; a command gets them resolved against where the output dir is now.
    def path(self, stored: str) -> Path:
        """A path as the journal stores it, on this machine."""
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    def stored(self, path: Path) -> str:
        """How the journal stores ``path`` (under the output dir): relative to it."""
        return Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()

    def portable(self, stored: Optional[str]) -> Optional[str]:
        """An older journal's path (absolute, or relative to the tuner's working dir) as a path
        relative to the output dir: ``.../round<k>/<name>`` keeps its last two parts, wherever the
        output dir was then."""
        if not stored:
            return stored
        p = Path(stored)
        if p.is_absolute():
            try:
                return p.relative_to(self.root).as_posix()
            except ValueError:
                pass
        m = _ROUND_PATH.search(p.as_posix())
        return m.group(1) if m else stored

    def has_model(self, rec: TrialRecord) -> bool:
        return _saved_something(self.path(rec.model_dir))

    # ---- the run -------------------------------------------------------------------------------
    def header(self) -> Dict[str, Any]:
        cfg = self.cfg
        return {
            "script": cfg.script,
            "space": [{"name": p.name, "init_value": p.init_value, "type": p.type, "low": p.low, "high": p.high,
                       "scale": p.scale, **({"values": list(p.values)} if p.type == "choice" else {})}
                      for p in self.space.params],
            "popsize": cfg.popsize, "rounds": cfg.rounds, "evaluator": cfg.evaluator,
            "tuning_strategy": cfg.tuning_strategy, "seed": cfg.seed, "options": cfg.options,
            "param_file": str(cfg.param_file),
            **({"pruner": cfg.pruner.to_json()} if cfg.pruner.kind != "none" else {}),
        }

    def _grid_snap(self):
        """SearchSpace.snap for a space of ints and choices only (a finite grid, where a strategy that
        uses it can avoid running the same trial twice); None for a space with a float."""
        return self.space.snap if self.space.is_grid else None

    def run(self) -> int:
        """Run (or resume) the search; returns the exit code (0, or 1 when no trial succeeded)."""
        from autoft.search import make_strategy

        cfg = self.cfg
        seed = self._resume() if cfg.resume else self._create()
        strategy = make_strategy(cfg.tuning_strategy, self.space.init_point(), cfg.popsize, seed,
                                 snap=self._grid_snap())
        self.live = output.LiveOutputs(self.out, self.space.names, cfg.popsize, space=self.space,
                                       title=f"autofinetune {Path(cfg.script).name}: {cfg.tuning_strategy} / "
                                       f"{cfg.evaluator}")
        self.live.rewrite(self.all_records())  # a resumed search shows its journaled trials right away
        if cfg.watcher is not None:
            for rec in self.all_records():
                cfg.watcher.trial_finished(rec)
        self._banner(seed)
        self._say_disk_estimate(self._pretrained_bytes(), "the size of the pretrained model")
        self.console = Console(cfg.popsize * cfg.rounds, len(self.records))
        stopped_early = ""
        try:
            for k in range(cfg.rounds):
                if strategy.should_stop():
                    stopped_early = f"{cfg.tuning_strategy} converged after {k} round(s) (its stop criterion fired)"
                    break
                points = strategy.ask()
                this_round = self._run_round(k, points)
                strategy.tell(points, [reward_of(r) for r in this_round])
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except BaseException:
            self.console.close()
            try:
                self.live.close()
            except OSError:
                pass  # the first error is the one to report
            raise
        self.console.close()
        print("PaddleHub Autofinetune ends." + (f" ({stopped_early})" if stopped_early else ""))
        return self._finish()

    def _banner(self, seed: int) -> None:
        cfg = self.cfg
        print("PaddleHub Autofinetune starts.")
        print(f"{cfg.tuning_strategy} / {cfg.evaluator}: {cfg.rounds} round(s) x {cfg.popsize} trial(s) on "
              f"{self.backend.describe()}, seed {seed}, output {self.out}")
        if cfg.evaluator == "populationbased" and any(o.split("=", 1)[0] in ("--epochs", "--model_path")
                                                       for o in cfg.options):
            print("note: the trailing epochs / model_path options apply to round 0; warm-started trials get "
                  "--epochs=1 --model_path <donor> (populationbased) instead")

    def _interrupted(self) -> None:
        """Ctrl-C / SIGTERM: the backend has ended every running trial; say how to continue."""
        self.console.close()
        print(f"\nInterrupted: running trials were stopped; {len(self.records)} finished trial(s) are in "
              f"{self.journal_path}.\nContinue with: {self.hint()}", file=sys.stderr)
        self.live.rewrite(self.all_records())
        self.live.close()
        (self.out / RUNNING_NAME).unlink(missing_ok=True)  # no trial of this tuner is left to kill

    def close(self) -> None:
        try:
            if self.backend is not None:
                self.backend.close()
        finally:
            self.lock.release()

    def all_records(self) -> List[TrialRecord]:
        return [self.records[t] for t in sorted(self.records)]

    def hint(self) -> str:
        return shlex.join(self.cfg.command) if self.cfg.command else "the same command with --resume"

    # ---- opening -------------------------------------------------------------------------------
    def _create(self) -> int:
        from autoft.search import make_strategy

        cfg = self.cfg
        if self.journal_path.exists():
            self.lock.acquire()  # refused with the holder's pid when a tuner is running it
            raise AutoftError(
                f"--output_dir {self.out} already holds a search ({self.journal_path}); add --resume to continue it "
                f"or choose another --output_dir"
            )
        seed = cfg.seed if cfg.seed is not None else int(np.random.SeedSequence().entropy % (2**32))
        # The strategy is built before anything is written, so a refused configuration
        # (e.g. HAZero with one hyper-parameter) leaves no half-made output dir behind; a fresh
        # one asks the same first point as the real one (strategies are deterministic per seed).
        first = make_strategy(cfg.tuning_strategy, self.space.init_point(), cfg.popsize, seed,
                              snap=self._grid_snap()).ask()[0]
        self._check_script(self.evaluator.trial_argv([cfg.python, "-u", cfg.script], self.root / "round0" / "model-0",
                                                     self.space.decode(first), cfg.options, None))
        self.backend = make_backend(cfg, self.out)  # e.g. Ray unreachable: refused before anything is written
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AutoftError(f"--output_dir {self.out}: cannot create it ({exc.strerror})") from None
        self.lock.acquire()
        if self.journal_path.exists():  # another tuner created it meanwhile and has finished
            raise AutoftError(f"--output_dir {self.out} already holds a search ({self.journal_path}); add --resume "
                              f"to continue it or choose another --output_dir")
        self.journal = Journal.create(self.journal_path, {**self.header(), "seed": seed})
        return seed

    def _resume(self) -> int:
        if self.journal_path.exists():
            self.lock.acquire()  # before anything is read or written: another tuner may be running it
        journal, stored, trials = Journal.resume(self.journal_path, self.header())
        self.journal = journal
        for d in trials:
            rec = TrialRecord.from_json(d)
            rec.log, rec.model_dir, rec.model_path = (self.portable(rec.log), self.portable(rec.model_dir),
                                                      self.portable(rec.model_path))
            self.records[rec.trial] = rec
        for line in journal.rounds.values():
            line["donors"] = [self.portable(d) for d in line.get("donors", [])]
            line["deleted"] = [self.portable(d) for d in line.get("deleted", [])]
        self._attempts = retries.journaled_attempts(self.journal_path)
        last = max((r.round for r in self.records.values()), default=-1)
        if last >= self.cfg.rounds:
            raise AutoftError(
                f"--resume --round {self.cfg.rounds}: {self.journal_path} already holds trials of round {last} "
                f"(rounds are counted from 0), so a smaller --round would rebuild trials.csv, best_hparams.yaml "
                f"and best_model/ from part of the search. Give --round {last + 1} or more"
            )
        self.backend = make_backend(self.cfg, self.out)
        killed = kill_orphans(self.out / RUNNING_NAME)
        for k, line in sorted(journal.rounds.items()):
            self._mark_deleted(line["deleted"], k)
            # Journaled as deleted but still here: the previous run died mid-deletion; finish it.
            _delete_dirs([self.path(d) for d in line["deleted"]])
        for rec in self.records.values():  # finalised before a kill could delete its resume state
            shutil.rmtree(self._resume_dir(rec.model_dir), ignore_errors=True)
        print(f"Resuming {self.journal_path}: {len(self.records)} finished trial(s) in the journal"
              + (f"; killed {len(killed)} trial process(es) left by the previous run" if killed else "") + ".")
        return stored["seed"]

    def _resume_dir(self, stored_model_dir: str) -> Path:
        """Where train.py keeps the trial's resume state: the sibling ``<model dir>.resume/``."""
        d = self.path(stored_model_dir)
        return d.with_name(d.name + RESUME_SUFFIX)

    def _mark_deleted(self, deleted: Sequence[str], k: int) -> None:
        """Note in the records (for trials.csv) which model dirs were deleted after round ``k``."""
        gone = set(deleted)
        for r in self.records.values():
            if r.model_dir in gone and r.model_deleted is None:
                r.model_deleted = k

    # ---- checks before spending ------------------------------------------------------------------
    def _check_script(self, argv: List[str]) -> None:
        """For autoft's own train.py (it imports autoft.finetune, which has --check): run
        ``<script> --check <the first trial's flags>`` once, and stop with its error line before
        any trial runs. Other scripts are left to the fail-fast rule (``_fail_fast``)."""
        if self.checked or not is_autoft_train_script(self.cfg.script):
            self.checked = True
            return
        self.checked = True
        env = dict(os.environ)
        if self.cfg.slots:
            env.update(self.cfg.slots[0].env)
        cmd = [*argv[:3], "--check", *argv[3:]]
        print(f"Checking the trials' flags: {shlex.join([Path(argv[2]).name, '--check', *argv[3:]])}", flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                                  timeout=CHECK_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise AutoftError(f"{self.cfg.script} --check did not finish in {CHECK_TIMEOUT_SECONDS}s; no trial "
                              f"was run") from None
        lines = (proc.stdout + proc.stderr).splitlines()
        if proc.returncode == 0:
            ok = [x for x in lines if "check OK" in x]
            print(ok[-1].strip() if ok else "check OK")
            # The check prints one trial's estimated GPU peak: will --trials_per_gpu trials fit each card?
            # (AutoftError when K > 1 cannot fit; CPU slots and Ray, which has no slots here, are skipped.)
            for warning in precheck(self.cfg.slots, proc.stdout + proc.stderr, self.cfg.trials_per_gpu):
                print(f"warning: {warning}")
            return
        errors_ = [x.strip() for x in lines if x.strip().startswith("error:")]
        line = errors_[-1] if errors_ else last_log_line("\n".join(lines)) or f"exit code {proc.returncode}"
        raise AutoftError(f"{self.cfg.script} --check with the first trial's flags failed, so no trial was run: "
                          f"{line.removeprefix('error:').strip()}")

    def _fail_fast(self, k: int, this_round: Sequence[TrialRecord]) -> None:
        """When every trial of the first round failed and their logs end in the same line, the
        next rounds would fail the same way: stop with that line."""
        if k != 0 or len(this_round) < 2 or any(r.status != FAILED for r in this_round):
            return
        tails = {r.log_tail for r in this_round}
        if len(tails) != 1 or not next(iter(tails)):
            return
        self.live.rewrite(self.all_records())
        raise AutoftError(
            f"every trial of round 0 failed with the same last log line: {next(iter(tails))} (e.g. "
            f"{self.out / this_round[0].log}); stopped before spending more trials. Fix the cause and start "
            f"again with a new --output_dir"
        )

    def _say_disk_estimate(self, model_bytes: int, basis: str) -> None:
        """When every model is kept (no --keep_models), say once how much disk the search will take
        (``model_bytes`` per trial, from ``basis``) against the output dir's free space."""
        if self.disk_said or self.cfg.keep_models is not None or model_bytes <= 0:
            return
        self.disk_said = True
        left = self.cfg.popsize * self.cfg.rounds - len(self.records)
        need, free = model_bytes * left, shutil.disk_usage(self.root).free
        msg = (f"Disk: each trial keeps its model (~{human_bytes(model_bytes)}, {basis}); the {left} trial(s) "
               f"still to run need ~{human_bytes(need)}, {human_bytes(free)} free on {self.out}.")
        if need > free:
            msg += " warning: that will not fit; add --keep_models K to keep only the K best models."
        (self.console.say if self.console else print)(msg)

    def _pretrained_bytes(self) -> int:
        """The size of the pretrained model a trailing ``model_dir`` option names (a fine-tuned copy
        of it is what each trial saves), 0 when there is none."""
        for opt in self.cfg.options:
            key, _, value = opt.partition("=")
            if key in ("--model_dir", "--model") and Path(value).is_dir():
                return _disk_bytes(Path(value))
        return 0

    # ---- one round -----------------------------------------------------------------------------
    def _run_round(self, k: int, points: Sequence[np.ndarray]) -> List[TrialRecord]:
        cfg = self.cfg
        specs = batch = self._specs(k, points)
        if specs:
            self._check_script(specs[0].argv)
        while batch:  # then the retries of the batch's crashed trials (--retries), until none is left
            self._retry = []
            self.backend.run(batch, self._finished, on_tick=self._tick if cfg.watcher else None,
                             tick_seconds=cfg.tick_seconds)
            batch = self._retry
        this_round = [self.records[k * cfg.popsize + idx] for idx in range(cfg.popsize)]
        if specs:
            self._fail_fast(k, this_round)
        # Replayed rounds (--resume) are appended to the VisualDL log, which open() emptied, so
        # it holds each round once; only rounds that ran trials redraw search.png.
        self.live.round_finished(k, this_round, self.all_records(), plot=bool(specs))
        local = output.best_record(this_round)
        if local is None:
            pruned = sum(r.status == PRUNED for r in this_round)
            self.console.say(f"Every trial of round {k} failed (see the FAILED lines above)." if not pruned else
                             f"No trial of round {k} finished: {pruned} PRUNED, {len(this_round) - pruned} FAILED.")
        else:
            self.console.say(f"The local best eval value in the {k}-th round is {local.score}.  "
                             f"({_hparams_line(local.hparams)})")
        replayed = self.journal.rounds.get(k)
        if replayed is not None:
            # --resume: the donors this round had (whatever is on disk now); its deletions were
            # applied when the journal was read.
            self.evaluator.replay(replayed["donors"])
        else:
            note = self.evaluator.next_donors(this_round, self.has_model)
            if note and k + 1 < cfg.rounds:
                self.console.say(note)
            if self._end_round(k):
                self.live.rewrite(self.all_records())  # trials.csv shows the deletions
        return this_round

    def _specs(self, k: int, points: Sequence[np.ndarray]) -> List[TrialSpec]:
        """The round's trials that are not journaled yet; the journaled ones must replay. A trial
        that a kill interrupted is continued (relaunched with its log, model dir and resume state)
        when it left resume state (``<model dir>.resume/``), else its leftovers are removed."""
        cfg = self.cfg
        round_dir = self.out / f"round{k}"
        specs = []
        for idx in range(cfg.popsize):
            t = k * cfg.popsize + idx
            rec = self.records.get(t)
            if rec is not None:
                if not np.allclose(rec.point, points[idx], rtol=0, atol=1e-9):
                    raise AutoftError(
                        f"--resume: {self.journal_path} does not replay: round {k} trial {idx} was at "
                        f"{rec.point} but the strategy now asks {points[idx].tolist()} "
                        f"(another version of numpy/cma, or an edited journal?). Start a new --output_dir."
                    )
                continue
            hparams = self.space.decode(points[idx])
            donor = self.evaluator.donor_for(t)
            model_dir = self.root / f"round{k}" / f"model-{idx}"
            relaunch = self._resume_dir(self.stored(model_dir)).is_dir()
            attempt = self._attempts.get(t, 0) + 1  # > 1: --resume after a journaled retry decision
            if relaunch:
                self.console.say(f"round {k} trial {idx}: continuing the interrupted trial from its resume state "
                                 f"({model_dir.name}{RESUME_SUFFIX}/); its log is appended to")
            else:
                _clean_leftovers(round_dir, idx, attempt)
            argv = self.evaluator.trial_argv([cfg.python, "-u", cfg.script], model_dir, hparams, cfg.options,
                                             None if donor is None else self.path(donor))
            specs.append(_at_attempt(TrialSpec(
                number=t, round=k, idx=idx, argv=argv, log_path=round_dir / f"log-{idx}.info", model_dir=model_dir,
                result_file=round_dir / f"result-{idx}.txt", trial_id=f"{self.root}#{t}",
                intermediate_file=round_dir / f"intermediate-{idx}.txt", relaunch=relaunch,
            ), attempt))
            self._planned[t] = {"point": points[idx].tolist(), "hparams": hparams, "model_path": donor}
        return specs

    def _tick(self, running: List[RunningTrial]) -> None:
        self.cfg.watcher.on_tick(running, self.stop_trial)

    def stop_trial(self, number: int, status: str, reason: str) -> bool:
        """Stop running trial ``number``: it is recorded with ``status`` and ``reason``."""
        return self.backend.stop_trial(number, status, reason)

    def _record(self, o: TrialOutcome) -> TrialRecord:
        s = o.spec
        planned = self._planned.pop(s.number)
        rec = TrialRecord(round=s.round, idx=s.idx, trial=s.number, point=planned["point"],
                          hparams=planned["hparams"], model_path=planned["model_path"], status=o.status,
                          score=o.score, reason=o.reason, seconds=round(o.seconds, 3),
                          log=self.stored(s.log_path), model_dir=self.stored(s.model_dir), slot=o.slot, note=o.note,
                          intermediate=[[step, score] for step, score in o.intermediate], attempts=s.attempt)
        if o.intermediate:
            rec.last_step, rec.last_score = o.intermediate[-1]
        if not o.note:  # for trials.csv's model_kept (a dir on another Ray node cannot be looked at)
            rec.saved = _saved_something(s.model_dir)
        if o.status not in (OK, PRUNED):  # a pruned trial's log ends with the stop signal, not a cause
            tail = log_tail(s.log_path)
            rec.log_tail = last_log_line(tail)
            if o.status == FAILED and o.reason.startswith("crashed") and ran_out_of_gpu_memory(tail):
                rec.reason = OUT_OF_GPU_MEMORY
        return rec

    def _retried(self, o: TrialOutcome) -> bool:
        """--retries: journal a crashed attempt and queue the next one (True), or say why not."""
        s = o.spec
        if o.status != FAILED or not self.cfg.retries:
            return False
        kind, code = retries.failure_kind(o.status, o.reason)
        decision = retries.decide(kind, s.attempt, self.cfg.retries, log_tail(s.log_path), code)
        if not decision.retry:
            if kind in retries.RETRYABLE_KINDS:
                o.reason += f" ({decision.why})"
            return False
        self.journal.append_attempt({"trial": s.number, "round": s.round, "idx": s.idx, "attempt": s.attempt,
                                     "reason": o.reason, "log": self.stored(s.log_path)})
        shutil.rmtree(s.model_dir, ignore_errors=True)  # the next attempt starts clean
        self._retry.append(_at_attempt(dataclasses.replace(s, relaunch=False), s.attempt + 1))
        self.console.say(f"round {s.round} trial {s.idx}: attempt {s.attempt} FAILED, {o.reason}; see {s.log_path}; "
                         f"{decision.why}: running it again")
        return True

    def _finished(self, o: TrialOutcome) -> None:
        s = o.spec
        if self._retried(o):
            return
        rec = self._record(o)
        if self.cfg.watcher is not None:  # before journaling: a pruner completes a PRUNED trial's record
            self.cfg.watcher.trial_finished(rec)
        self.journal.append(rec.to_json())
        self.records[s.number] = rec
        # Finalised: train.py's resume state is of no further use (the trial will not run again).
        shutil.rmtree(self._resume_dir(rec.model_dir), ignore_errors=True)
        self.live.trial_finished(rec)
        if o.status == OK:
            msg = (f"round {s.round} trial {s.idx}: score {o.score:.6g}  {_hparams_line(rec.hparams)}  "
                   f"({o.seconds:.1f}s)")
        else:
            last = f": {rec.log_tail}" if rec.log_tail else ""
            msg = (f"round {s.round} trial {s.idx}: {rec.status}, {rec.reason}{last}; see {s.log_path}  "
                   f"({_hparams_line(rec.hparams)})")
        if o.note and not self.noted:  # e.g. no shared filesystem: say it once, not per trial
            msg += f"\n  note: {o.note}"
            self.noted.append(o.note)
        self.console.say(msg)
        self.console.trial_done()
        if rec.saved:
            self._say_disk_estimate(_disk_bytes(self.path(rec.model_dir)), "the size of the first saved model")

    def _end_round(self, k: int) -> bool:
        """Journal round ``k`` (its donors for the next round) and, with --keep_models, delete the model
        dirs outside the keep set: journaled first, so a kill mid-deletion leaves a consistent resume.
        The donors are kept even after the last round: a resume with a larger --round warm-starts from them.
        Returns whether anything was deleted."""
        keep = self.cfg.keep_models
        line: Dict[str, Any] = {"round": k, "donors": list(self.evaluator.donors)}
        if keep is None:
            self.journal.append_round(line)
            return False
        doomed = self._to_delete(keep)
        freed = sum(_disk_bytes(self.path(d)) for d in doomed)
        self.journal.append_round({**line, "keep_models": keep, "deleted": doomed, "freed_bytes": freed})
        self._mark_deleted(doomed, k)  # the journal now says so, even if a Ctrl-C stops the deletion
        errors = _delete_dirs([self.path(d) for d in doomed] + [self._resume_dir(d) for d in doomed])
        kept = sum(1 for r in self.records.values() if r.model_deleted is None and self.path(r.model_dir).exists())
        self.console.say(f"--keep_models {keep}: deleted {len(doomed)} model dir(s) of finished trials, freed "
                         f"{human_bytes(freed)}; {kept} kept."
                         + (f" Could not delete: {'; '.join(errors)}" if errors else ""))
        return True

    def _to_delete(self, keep: int) -> List[str]:
        """The finished trials' model dirs (present on this machine, not deleted yet) outside the keep
        set: the ``keep`` best successful trials so far (ties to the earlier trial, as
        output.best_record) and the next round's donors."""
        ok = sorted((r for r in self.records.values() if r.ok), key=lambda r: (-r.score, r.trial))
        kept = {r.model_dir for r in ok[:keep]} | set(self.evaluator.donors)
        return [r.model_dir for r in self.all_records()
                if r.model_dir not in kept and r.model_deleted is None and self.path(r.model_dir).exists()]

    # ---- the end -------------------------------------------------------------------------------
    def _finish(self) -> int:
        cfg, out, names = self.cfg, self.out, self.space.names
        records = self.all_records()
        best = output.best_record(records)
        self.live.rewrite(records)  # in trial order (rows were appended in finishing order)
        output.write_log_file(out / "log_file.txt", names, records, best)
        copied = output.copy_best_model(best, out, self.root)
        output.write_best_hparams(out / "best_hparams.yaml", best, best_model=(out / "best_model").is_dir()
                                  and copied.startswith("The final best model"))
        note = self.live.close()  # every round is already in visualization/
        title = (f"autofinetune {Path(cfg.script).name}: {cfg.tuning_strategy} / {cfg.evaluator}, "
                 f"{len(records)} trials" + (f", best {best.score:.4g}" if best else ", none succeeded"))
        output.plot_search(out / "search.png", names, records, space=self.space, title=title)
        lines = [output.summary_table(names, records)]
        oom = sum(r.reason == OUT_OF_GPU_MEMORY for r in records)
        if oom:
            lines.append(f"{oom} trial(s) ran out of GPU memory. Fixes: {OOM_FIXES}.")
        if best is None:
            pruned = sum(r.status == PRUNED for r in records)
            lines.append(f"No trial succeeded: every trial FAILED (reasons above; logs in {out}/round*/log-*.info)."
                         if not pruned else f"No trial succeeded: {pruned} PRUNED, {len(records) - pruned} FAILED.")
        else:
            lines.append("The final best hyperparameters:")
            lines += [f"{n}={best.hparams[n]}" for n in names]
            lines.append(f"The final best eval score is {best.score}.")
            lines.append(copied)
        atomic.write_text(out / "summary.txt", "\n".join(lines) + "\n")
        print("\n".join(lines[:1]))
        if note:
            print(note)
        print("\n".join(lines[1:]))
        (out / RUNNING_NAME).unlink(missing_ok=True)
        if best is None:
            return 1
        print(f"Search details: {out / 'trials.csv'}, {out / 'summary.txt'}, {out / 'search.png'}, "
              f"{out / 'log_file.txt'}.")
        return 0


def is_autoft_train_script(script: str) -> bool:
    """Whether ``script`` is autoft's own train.py (or one built the same way): it imports
    autoft.finetune, whose command line has --check."""
    try:
        src = Path(script).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"^\s*(from\s+autoft\.finetune\s+import|import\s+autoft\.finetune|"
                          r"from\s+autoft\s+import\s+[^\n]*\bfinetune\b)", src, re.MULTILINE))


def _clean_leftovers(round_dir: Path, idx: int, attempt: int = 1) -> None:
    """Remove what an unfinished trial (tuner killed mid-trial) left, before it runs again; the files
    of its journaled earlier attempts (--retries) are kept."""
    shutil.rmtree(round_dir / f"model-{idx}", ignore_errors=True)
    for name in (f"log-{idx}.info", f"result-{idx}.txt", f"intermediate-{idx}.txt"):
        retries.attempt_path(round_dir / name, attempt).unlink(missing_ok=True)


def _at_attempt(spec: TrialSpec, attempt: int) -> TrialSpec:
    """``spec`` as attempt ``attempt`` of its trial: same command, that attempt's log, result and
    intermediate files (retries.attempt_path)."""
    def moved(path: Optional[Path]) -> Optional[Path]:
        return None if path is None else retries.attempt_path(retries.first_attempt_path(path, spec.attempt), attempt)

    return dataclasses.replace(spec, attempt=attempt, log_path=moved(spec.log_path),
                               result_file=moved(spec.result_file), intermediate_file=moved(spec.intermediate_file))


def write_failure(exc: OSError, out: Path, hint: str) -> AutoftError:
    """A failed write (disk full, read-only, quota) as one line: which file, the free space, what to do."""
    what = exc.filename or "a file of the search"
    try:
        free = f"; {human_bytes(shutil.disk_usage(out).free)} free on {out}"
    except OSError:
        free = ""
    name = errno.errorcode.get(exc.errno or 0, "")
    return AutoftError(
        f"could not write {what}: {exc.strerror or exc}" + (f" ({name})" if name else "") + free
        + f". Running trials were stopped; the journal keeps every finished trial: free some space (or fix the "
        f"permissions), then continue with: {hint}"
    )


def run_search(cfg: SearchConfig) -> int:
    """Run (or resume) a search; returns the exit code (0, or 1 when no trial succeeded)."""
    run = SearchRun(cfg)
    try:
        return run.run()
    except OSError as exc:
        raise write_failure(exc, run.out, run.hint()) from None
    finally:
        run.close()
