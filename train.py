"""Fine-tune a classifier with discriminative learning rates (the seed's train.py, rebuilt).

    python train.py --dataset demo
    hub autofinetune train.py --param_file=hparam.yaml ... dataset tnews

Flags: python train.py --help; details in docs/finetune.md.
"""

import sys

from autoft.runtime import setup_process

setup_process()  # thread count and MKL dispatch, before anything imports paddle

from autoft.errors import run_cli  # noqa: E402
from autoft.finetune import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
