"""``hub autofinetune`` / ``autofinetune`` / ``autoft autofinetune``: PaddleHub 1.4's command line.

    hub autofinetune train.py --param_file=hparam.yaml --gpu=0,1 --popsize=5 --round=10 \\
        --output_dir=./output --evaluator=fulltrail --tuning_strategy=hazero dataset TNEWS

Flags and defaults are PaddleHub 1.4's (docs/tuner.md lists them); trailing
``key value`` pairs reach every trial as ``--key=value``. Additions: --resume, --cpu_slots,
--trials_per_gpu, --seed, --trial_timeout, --keep_models, --python, --backend ray / --ray_address,
--pruner (and its settings), --retries.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from autoft.errors import ArgumentParser, AutoftError, run_cli
from autoft.tuner.pruners import PRUNERS, PrunerConfig
from autoft.tuner.pruning import PruningMonitor

STRATEGY_CHOICES = ("hazero", "pshe2", "random", "tpe", "auto")
DEFAULT_STRATEGY = "auto"  # PaddleHub 1.4's default was pshe2 (docs/search.md: why autoft's is auto)

HUB_CLASH = (
    "this `hub` command comes from autoft: it only provides `hub autofinetune` (PaddleHub 1.4's AutoDL "
    "Finetuner) itself and hands other sub-commands to PaddleHub; found `hub {found}`, and paddlehub {why}. "
    "For PaddleHub 2.x's commands (install, run, serving, ...) `pip install paddlehub`; for this tuner you can "
    "always use `autofinetune ...` or `autoft autofinetune ...`."
)


def build_parser(prog: str = "hub autofinetune") -> argparse.ArgumentParser:
    """The argument parser (the script is taken off argv before parsing, as PaddleHub did)."""
    p = ArgumentParser(
        prog=f"{prog} <script.py>",
        description="Search hyper-parameters of a training script that reports its score with "
        "autoft.report_final_result (PaddleHub 1.4's AutoDL Finetuner).",
        epilog="Trailing `key value` pairs are passed to every trial as --key=value, e.g. `dataset TNEWS`. "
        "They must come after all flags.",
    )
    g = p.add_argument_group("PaddleHub 1.4 flags")
    g.add_argument("--param_file", required=True, help="hparam.yaml: the search space")
    g.add_argument("--gpu", default=None, help='comma-separated GPU ids, one trial per GPU at a time (None: "0")')
    g.add_argument("--popsize", type=int, default=5, help="trials per round (>= 1; also the CMA-ES population)")
    g.add_argument("--round", type=int, default=10, help="maximum number of rounds (>= 1)")
    g.add_argument("--output_dir", default=None, help="output root (None: output_<YYYYmmddHHMMSS>)")
    g.add_argument("--evaluator", default="populationbased",
                   help="fulltrail | populationbased (alias modelbased)")
    g.add_argument("--tuning_strategy", default=None,
                   help=f"hazero | pshe2 | random | tpe | auto (default {DEFAULT_STRATEGY}; PaddleHub 1.4's was pshe2; "
                   "--resume without it: the journal's)")
    a = p.add_argument_group("autoft additions")
    a.add_argument("--resume", action="store_true", help="continue the search journaled in --output_dir")
    a.add_argument("--cpu_slots", type=int, default=None, metavar="N",
                   help="run trials on CPU, N at a time (>= 1; instead of --gpu)")
    a.add_argument("--trials_per_gpu", type=int, default=1, metavar="K", help="trials sharing one GPU (>= 1)")
    a.add_argument("--seed", type=int, default=None, help="strategy seed (None: drawn and journaled)")
    a.add_argument("--trial_timeout", type=float, default=None, metavar="SECONDS",
                   help="kill a trial after this many seconds (> 0; it counts as FAILED; None: no limit)")
    a.add_argument("--keep_models", type=int, default=None, metavar="K",
                   help="after each round delete the finished trials' model dirs except the K best so far and "
                   "the next round's populationbased donors (>= 1; None: keep all)")
    a.add_argument("--python", default=sys.executable, help="interpreter for the trials")
    a.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local: a pool of slots on this machine; ray: Ray schedules the trials "
                   "(pip install 'autoft[ray]')")
    a.add_argument("--ray_address", default=None, metavar="auto|HOST:PORT",
                   help="with --backend ray: join this cluster (`ray start --head`; None: start a local Ray)")
    r = p.add_argument_group("pruning and retries (docs/tuner.md, \"Pruning and retries\")")
    r.add_argument("--pruner", default="none", choices=PRUNERS,
                   help="stop trials that fall behind, judged on their report_intermediate_result scores: "
                   "median (below the median of the others at the same step) or asha (successive halving)")
    r.add_argument("--prune_grace", type=int, default=None, metavar="STEPS",
                   help="median: no decision before this step; asha: the first rung (>= 1; None: the step of the "
                   "first intermediate result)")
    r.add_argument("--prune_eta", type=float, default=3.0, metavar="F",
                   help="asha: rungs at grace*F^k, the top 1/F go on (> 1)")
    r.add_argument("--prune_min_trials", type=int, default=3, metavar="N",
                   help="judge a trial only against at least N others at that step / rung (>= 1)")
    r.add_argument("--prune_max_step", type=int, default=None, metavar="STEPS",
                   help="the trials' last step: reports there or later are never judged (>= 1; None: no limit)")
    r.add_argument("--retries", type=int, default=0, metavar="N",
                   help="run a crashed trial again (same hyper-parameters) up to N times (>= 0); never pruned, "
                   "timed-out or deterministic failures (out of memory, usage errors)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def pruning_config(args: argparse.Namespace) -> PrunerConfig:
    """The --pruner flags as a PrunerConfig; AutoftError naming the flag for a bad value."""
    try:
        return PrunerConfig(args.pruner, args.prune_grace, args.prune_eta, args.prune_min_trials, args.prune_max_step)
    except ValueError as exc:
        raise AutoftError(str(exc)) from None


def _forwarded(opts: Sequence[str], parser: argparse.ArgumentParser) -> List[str]:
    """``["dataset", "TNEWS"]`` -> ``["--dataset=TNEWS"]``; AutoftError for an odd count or a stray flag."""
    known = {s for act in parser._actions for s in act.option_strings}
    for i in range(0, len(opts), 2):
        key = opts[i].split("=", 1)[0]
        if key in known:
            raise AutoftError(
                f"flag {key} comes after the trailing `key value` options {list(opts[:i])}; put all flags "
                f"before them"
            )
    if len(opts) % 2:
        raise AutoftError(
            f"trailing options must be `key value` pairs (each becomes --key=value), found an odd number "
            f"of tokens: {list(opts)}"
        )
    return [f"--{k.lstrip('-')}={v}" for k, v in zip(opts[0::2], opts[1::2])]


def cli(argv: Optional[Sequence[str]] = None, prog: str = "autofinetune") -> int:
    """Parse ``<script> [flags] [key value ...]`` and run the search. Raises AutoftError on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    script, rest = argv[0], argv[1:]
    if script.startswith("-"):
        raise AutoftError(f"the training script comes first: `{prog} <script.py> --param_file=...`, found {script!r}")
    args = parser.parse_args(rest)
    options = _forwarded(args.opts or [], parser)

    if not Path(script).is_file():
        raise AutoftError(f"{script}: training script not found")
    if not Path(args.param_file).is_file():
        raise AutoftError(f"{args.param_file}: --param_file not found (expected a PaddleHub hparam.yaml)")
    if shutil.which(args.python) is None and not os.access(args.python, os.X_OK):
        raise AutoftError(f"--python {args.python}: no such interpreter")
    if args.popsize < 1:
        raise AutoftError(f"--popsize must be at least 1 (trials per round), found {args.popsize}")
    if args.round < 1:
        raise AutoftError(f"--round must be at least 1 (the number of rounds), found {args.round}")
    if args.keep_models is not None and args.keep_models < 1:
        raise AutoftError(f"--keep_models must be at least 1 (the best trial's model is always kept; leave the "
                          f"flag out to keep every trial's model), found {args.keep_models}")
    if args.retries < 0:
        raise AutoftError(f"--retries must be 0 or more, found {args.retries}")
    pruner = pruning_config(args)
    if args.trial_timeout is not None and not args.trial_timeout > 0:
        raise AutoftError(f"--trial_timeout must be positive seconds, found {args.trial_timeout}")
    if args.cpu_slots is not None and args.cpu_slots < 1:
        raise AutoftError(f"--cpu_slots must be at least 1, found {args.cpu_slots}")
    if args.trials_per_gpu < 1:
        raise AutoftError(f"--trials_per_gpu must be at least 1, found {args.trials_per_gpu}")
    evaluator = args.evaluator.strip().lower()
    from autoft.tuner.search_loop import EVALUATORS, SearchConfig, run_search

    if evaluator not in EVALUATORS:
        raise AutoftError(f"--evaluator: expected fulltrail or populationbased (alias modelbased), found {args.evaluator!r}")
    if args.resume and args.output_dir is None:
        raise AutoftError("--resume needs --output_dir: the directory of the search to continue")
    strategy = _strategy(args)
    output_dir = args.output_dir or time.strftime("output_%Y%m%d%H%M%S")

    from autoft.tuner.devices import plan_slots

    if args.backend == "ray":
        from autoft.tuner.ray_backend import import_ray

        import_ray()  # the install hint before anything else happens
        if args.gpu is not None:
            print(f"note: --gpu={args.gpu} is ignored with --backend ray: Ray assigns each trial a GPU "
                  f"(1/--trials_per_gpu of one) on whichever node has it free.", file=sys.stderr)
        slots = []
    else:
        if args.ray_address is not None:
            raise AutoftError(f"--ray_address {args.ray_address} needs --backend ray")
        slots = plan_slots(args.gpu, args.cpu_slots, args.trials_per_gpu)
    cfg = SearchConfig(
        script=script, param_file=args.param_file, popsize=args.popsize, rounds=args.round,
        output_dir=Path(output_dir), evaluator=EVALUATORS[evaluator], tuning_strategy=strategy,
        options=options, slots=slots, seed=args.seed, resume=args.resume, trial_timeout=args.trial_timeout,
        python=args.python, backend=args.backend, ray_address=args.ray_address, cpu_slots=args.cpu_slots,
        trials_per_gpu=args.trials_per_gpu, keep_models=args.keep_models, pruner=pruner, retries=args.retries,
        watcher=PruningMonitor(pruner, per_round=EVALUATORS[evaluator] == "populationbased")
        if pruner.kind != "none" else None,
        # For the "continue with" hint: flags go right after the script, before the trailing options.
        command=[prog, script, *([] if args.resume else ["--resume"]),
                 *([] if args.output_dir else ["--output_dir", output_dir]), *rest],
    )
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return run_search(cfg)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _strategy(args: argparse.Namespace) -> str:
    """--tuning_strategy, lower-cased; when it is not given: the journal's on --resume (a search
    started under another default goes on as it began), else DEFAULT_STRATEGY."""
    name = args.tuning_strategy
    if name is None and args.resume:
        from autoft.tuner.journal import read

        path = Path(args.output_dir) / "journal.jsonl"
        stored = read(path)[0] if path.is_file() else None
        name = (stored or {}).get("tuning_strategy")
    strategy = (name or DEFAULT_STRATEGY).strip().lower()
    if strategy not in STRATEGY_CHOICES:
        raise AutoftError(f"--tuning_strategy: expected one of {', '.join(STRATEGY_CHOICES)}, found {name!r}")
    return strategy


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    # SIGTERM (e.g. from a job scheduler) takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``autofinetune`` console script."""
    sys.exit(run_cli(lambda a: cli(a, prog="autofinetune"), argv))


def _paddlehub_entry():
    """PaddleHub's own ``hub`` console function, or None when paddlehub is not installed.

    Its distribution's ``console_scripts`` entry named ``hub`` (what pip would run), else PaddleHub
    2.x's ``paddlehub.commands.utils:execute``. Loading it imports paddlehub.
    """
    from importlib import metadata
    from importlib.util import find_spec

    if find_spec("paddlehub") is None:
        return None
    eps = metadata.entry_points()
    scripts = eps.select(group="console_scripts") if hasattr(eps, "select") else eps.get("console_scripts", [])
    for ep in scripts:
        if ep.name == "hub" and ep.value.split(":")[0].split(".")[0] == "paddlehub":
            return ep.load()
    from paddlehub.commands.utils import execute

    return execute


def _run_paddlehub(argv: Sequence[str]) -> Optional[int]:
    """Hand ``hub <argv>`` to PaddleHub when it imports; None when it is not installed."""
    try:
        entry = _paddlehub_entry()
    except ImportError as exc:
        raise AutoftError(HUB_CLASH.format(found=" ".join(argv[:2]), why=f"is installed but does not import ({exc})")
                          ) from exc
    if entry is None:
        return None
    saved = sys.argv
    sys.argv = ["hub", *argv]
    try:
        status = entry()
    finally:
        sys.argv = saved
    return int(status or 0)


def _hub(argv: Sequence[str]) -> int:
    argv = list(argv)
    if argv and argv[0] == "autofinetune":
        return cli(argv[1:], prog="hub autofinetune")
    usage = ("usage: hub autofinetune <script.py> --param_file=hparam.yaml [flags] [key value ...]\n"
             "(`hub autofinetune -h` lists the flags; other sub-commands such as `hub install` go to PaddleHub "
             "when paddlehub is installed)")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    status = _run_paddlehub(argv)  # `hub install ernie`, `hub serving ...`, `hub help`: PaddleHub's own
    if status is not None:
        return status
    if argv[0] == "help":
        print(usage)
        return 0
    raise AutoftError(HUB_CLASH.format(found=" ".join(argv[:2]), why="is not installed"))


def hub_main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``hub`` console script: ``hub autofinetune``; any other sub-command goes to PaddleHub if installed."""
    sys.exit(run_cli(_hub, argv))


if __name__ == "__main__":
    main()
