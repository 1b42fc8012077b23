"""autoft: ChineseGLUE-AutoFinetune rebuilt on PaddlePaddle 3.x.

Importing this package is cheap and never imports Paddle: a training script's
``from autoft import report_final_result`` must not pay for Paddle. The heavy parts
(``load_pretrained`` and friends) are imported on first attribute access.
"""

from autoft.errors import AutoftError
from autoft.report import report_final_result, report_intermediate_result

__version__ = "0.1.0"

_LAZY = {
    "load_pretrained": "autoft.checkpoint",
    "load_classifier": "autoft.checkpoint",
    "save_pretrained": "autoft.checkpoint",
    "BertConfig": "autoft.model",
    "BertModel": "autoft.model",
    "BertForSequenceClassification": "autoft.model",
    "BertTokenizer": "autoft.tokenizer",
    "Classifier": "autoft.classifier",
    "Predictions": "autoft.classifier",
}

__all__ = ["AutoftError", "report_final_result", "report_intermediate_result", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autoft' has no attribute {name!r}")
