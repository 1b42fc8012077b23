"""``autoft convert SRC DST``: any supported weight format -> autoft's own checkpoint format.

SRC is a directory (Hugging Face, PaddleNLP, PaddleHub 1.x module, or autoft's format) or a
model name resolved like everywhere else (``--model_dir``, then ``$AUTOFT_HOME/models/<name>``).
A source with a fine-tuned classifier head (PaddleNLP ``classifier.*``, PaddleHub
``cls_out_w``/``cls_out_b``, HF ``classifier.*``) becomes an autoft classifier; its label
names come from a labels file beside the weights when there is one, else "0".."n-1".
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from autoft.errors import ArgumentParser, AutoftError
from autoft.weights import read_json, short_list

LABEL_FILES = ("labels.json", "labels.txt", "label_list.txt")


def read_labels(src: Path, n: int, hf_config: Optional[Path] = None) -> List[str]:
    """Label names of an ``n``-class head: a labels file in ``src`` (labels.json: a JSON list;
    labels.txt / label_list.txt: one per line), else a Hugging Face config's id2label when it
    is not the default LABEL_i, else "0".."n-1". A file with a different count is an error."""
    for name in LABEL_FILES:
        path = src / name
        if not path.is_file():
            continue
        if name.endswith(".json"):
            labels = read_json(path, "a JSON list of label names", list)
        else:
            labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(labels) != n:
            raise AutoftError(f"{path}: expected {n} labels (the classifier head has {n} outputs), found {len(labels)}")
        return [str(x) for x in labels]
    if hf_config is not None and hf_config.is_file():
        id2label = read_json(hf_config, "the model config (a JSON object)", dict).get("id2label") or {}
        try:
            labels = [str(id2label[k]) for k in sorted(id2label, key=int)]
        except (ValueError, TypeError):
            labels = []
        if len(labels) == n and labels != [f"LABEL_{i}" for i in range(n)]:
            return labels
    return [str(i) for i in range(n)]


def convert(src, dst, model_dir=None, force: bool = False) -> dict:
    """Convert the model at ``src`` (path or name) into autoft's format at ``dst``.

    Returns a summary dict: format, source, parameters, unused, labels (None for an encoder).
    Raises AutoftError when ``dst`` exists and is not empty (unless ``force``), and for
    everything :func:`autoft.weights.read_foreign` rejects.
    """
    from autoft import checkpoint, weights
    from autoft.model import BertForSequenceClassification, BertModel, classifier_state

    src_path = Path(src)
    if not src_path.exists() or model_dir is not None:
        src_path = checkpoint.resolve_model_dir(str(src), model_dir)
    fmt = weights.detect_format(src_path)
    if fmt is None:
        weights.read_foreign(src_path)  # raises the message that says what a model directory holds
    dst = Path(dst)
    if dst.resolve() == src_path.resolve():
        raise AutoftError(f"{dst}: output directory is the source directory; choose a new directory")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())) and not force:
        raise AutoftError(f"{dst}: output directory exists and is not empty; choose a new directory or pass --force")
    if fmt == "autoft":
        # Our own format: load and re-save (normalises the files; a classifier stays one).
        is_classifier = (src_path / "labels.json").is_file()
        model = checkpoint.load_classifier(src_path) if is_classifier else checkpoint.load_pretrained(src_path)
        vocab = src_path / "vocab.txt"
        lower = weights.read_do_lower_case(src_path / "tokenizer_config.json")
        unused: List[str] = []
        labels = model.labels if is_classifier else None
    else:
        config, state, info = weights.read_foreign(src_path, fmt)
        head = info["classifier"]
        if head is None:
            model = BertModel(config, init="zeros")
            labels = None
        else:
            n = int(head["bias"].shape[0])
            labels = read_labels(src_path, n, src_path / "config.json" if fmt == "hf" else None)
            model = BertForSequenceClassification(config, labels, init="zeros")
            state = classifier_state(state, head)
        checkpoint.assign_state(model, state, str(info["weights_file"]))
        vocab, lower, unused = info["vocab_file"], info["do_lower_case"], info["unused"]
    checkpoint.save_pretrained(model, dst, vocab, do_lower_case=lower)
    return {"format": fmt, "source": src_path, "parameters": model.num_parameters(), "unused": unused,
            "labels": labels, "config": model.config}


def cli(argv: Optional[Sequence[str]] = None) -> int:
    """``autoft convert SRC DST [--model_dir DIR] [--force]``."""
    parser = ArgumentParser(
        prog="autoft convert",
        description="Convert pretrained weights (Hugging Face, PaddleNLP, PaddleHub 1.x module, or autoft) "
                    "into autoft's format: config.json, model.safetensors, vocab.txt, tokenizer_config.json "
                    "(+ labels.json for a fine-tuned classifier). Exit 0: converted; 2: a bad source, "
                    "destination or flag (one line naming it).")
    parser.add_argument("src", help="model directory, or a model name looked up in --model_dir / $AUTOFT_HOME/models")
    parser.add_argument("dst", help="output directory (must not exist or be empty, unless --force)")
    parser.add_argument("--model_dir", default=None,
                        help="directory holding the model when SRC is a name (default: $AUTOFT_HOME/models)")
    parser.add_argument("--force", action="store_true", help="write into DST even if it is not empty")
    args = parser.parse_args(list(argv or []))

    from autoft.runtime import import_paddle

    import_paddle()  # thread setup first, and Paddle's OMP_NUM_THREADS banner filtered out
    summary = convert(args.src, args.dst, args.model_dir, args.force)
    c = summary["config"]
    print(f"read {summary['source']} (format: {summary['format']})")
    print(f"model: {c.num_hidden_layers} layers, hidden {c.hidden_size}, {c.num_attention_heads} heads, "
          f"vocab {c.vocab_size}; {summary['parameters']:,} parameters")
    if summary["labels"] is not None:
        print(f"classifier head: {len(summary['labels'])} labels ({', '.join(summary['labels'])})")
    if summary["unused"]:
        print(f"not converted ({len(summary['unused'])} unused tensors): {short_list(summary['unused'])}")
    else:
        print("not converted: none (every source tensor was used)")
    print(f"wrote {args.dst} (autoft format)")
    return 0
