"""Predict with the best model: a task's test split (submission files) or your own text.

    python predict.py --dataset tnews --checkpoint_dir ./output
    python predict.py --dataset demo --checkpoint_dir output/demo --score
    echo 质量很好 | python predict.py --checkpoint_dir output/demo --input -

Flags: python predict.py --help; details in docs/predict.md.
"""

import sys

from autoft.runtime import setup_process

setup_process()  # thread count and MKL dispatch, before anything imports paddle

from autoft.errors import run_cli  # noqa: E402
from autoft.predict import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
