"""The parameter table (autoft.model.param_table): names, shapes, levels, layers, weight decay.

The levels, layers and weight-decay rule below are FROZEN copies of what autoft computed before
the table existed (model._levels / model._layer_of / optim.no_weight_decay, commit 8ad4876):
the seed's tuned blocks/factor assume exactly these levels (149 for the large classifier), so
the table must reproduce them for every preset, not just for one tiny model.
"""

from __future__ import annotations

import re

import numpy as np
import paddle
import pytest

from autoft.errors import AutoftError
from autoft.model import (
    PRESETS,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    classifier_state,
    levels_of,
    param_table,
    split_encoder_state,
)

# ---------------------------------------------------------------- frozen reference (pre-table code)


def frozen_levels(num_layers: int, prefix: str, classifier: bool) -> list[list[str]]:
    out: list[list[str]] = []
    if classifier:
        out += [["classifier.bias"], ["classifier.weight"]]

    def wb(name):
        return [f"{prefix}{name}.weight", f"{prefix}{name}.bias"]

    out.append(wb("pooler.dense"))
    for i in reversed(range(num_layers)):
        p = f"encoder.layers.{i}."
        for part in ("ffn_norm", "ffn_out", "ffn_in", "attention_norm", "attention.out", "attention.qkv"):
            out.append(wb(p + part))
    out.append(wb("embeddings.layer_norm"))
    out.append([f"{prefix}embeddings.word_embeddings.weight", f"{prefix}embeddings.position_embeddings.weight",
                f"{prefix}embeddings.token_type_embeddings.weight"])
    return out


def frozen_layer_of(name: str, num_layers: int) -> int:
    m = re.match(r"^(?:bert\.)?encoder\.layers\.(\d+)\.", name)
    if m:
        return int(m.group(1)) + 1
    bare = name[len("bert."):] if name.startswith("bert.") else name
    if bare.startswith("embeddings."):
        return 0
    assert bare.startswith("pooler.") or name.startswith("classifier.")
    return num_layers + 1


def frozen_no_weight_decay(name: str) -> bool:
    last = name.split(".")
    module = last[-2] if len(last) >= 2 else ""
    return name.endswith("bias") or "norm" in module or "layer_norm" in name


CASES = [(preset, labels) for preset in PRESETS for labels in (None, 2, 15)]


@pytest.mark.parametrize("preset,num_labels", CASES)
def test_levels_layers_and_decay_equal_the_frozen_rules_for_every_preset(preset, num_labels):
    config = BertConfig.preset(preset)
    table = param_table(config, num_labels)
    n = config.num_hidden_layers
    classifier = num_labels is not None
    want = frozen_levels(n, "bert." if classifier else "", classifier)
    assert levels_of(table) == want
    assert len(want) == 6 * n + (5 if classifier else 3)
    for p in table:
        assert p.layer == frozen_layer_of(p.name, n), p.name
        assert p.decay == (not frozen_no_weight_decay(p.name)), p.name


def test_large_classifier_has_paddlehubs_149_levels_and_known_size():
    config = BertConfig.preset("roberta-wwm-ext-large")
    assert len(levels_of(param_table(config, 15))) == 149
    # The encoder's parameter count of HFL's RoBERTa-wwm-ext-large (docs/weights.md).
    assert sum(int(np.prod(p.shape)) for p in param_table(config)) == 325_522_432


def tiny(**kw):
    return BertConfig(**{**dict(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=4,
                                intermediate_size=24, max_position_embeddings=20, type_vocab_size=3), **kw})


@pytest.mark.parametrize("labels", [None, ["a", "b", "c"]])
def test_table_is_the_models_parameters_in_order_with_shapes(labels):
    paddle.seed(0)
    model = BertModel(tiny()) if labels is None else BertForSequenceClassification(tiny(), labels)
    got = [(p.name, p.shape) for p in model.param_table()]
    assert got == [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    assert model.num_parameters() == sum(int(np.prod(p.shape)) for p in model.parameters())
    assert model.levels() == levels_of(model.param_table())
    first = model.param_table()[0].name
    assert first.endswith("embeddings.word_embeddings.weight") and model.layer_of(first) == 0
    with pytest.raises(AutoftError, match=r"layer_of: 'bert.decoder.weight' is not a parameter"):
        model.layer_of("bert.decoder.weight")


def test_encoder_prefix_split_and_join_are_inverse():
    enc = {p.name: np.full(p.shape, i, np.float32) for i, p in enumerate(param_table(tiny()))}
    head = {"weight": np.ones((16, 2), np.float32), "bias": np.zeros(2, np.float32)}
    state = classifier_state(enc, head)
    assert sorted(state) == sorted(p.name for p in param_table(tiny(), 2))
    back, rest = split_encoder_state(state)
    assert rest == ["classifier.bias", "classifier.weight"]
    assert back.keys() == enc.keys() and all(back[k] is enc[k] for k in enc)


# ---------------------------------------------------------------- BertConfig: the one place for checks


def test_from_dict_names_the_source_and_checks_every_field():
    shape = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24)
    assert BertConfig.from_dict({**shape, "hidden_size": 16.0, "pad_token_id": None, "extra": 1}).pad_token_id == 0
    with pytest.raises(AutoftError, match=r"^x/config.json: model config is missing vocab_size; expected the BERT"):
        BertConfig.from_dict({k: v for k, v in shape.items() if k != "vocab_size"}, "x/config.json")
    with pytest.raises(AutoftError, match=r"^c: model config: hidden_size=16.5 is not a valid int"):
        BertConfig.from_dict({**shape, "hidden_size": 16.5}, "c")
    with pytest.raises(AutoftError, match=r"model config: hidden_size=True is not a valid int"):
        BertConfig.from_dict({**shape, "hidden_size": True})
    with pytest.raises(AutoftError, match=r"model config: num_hidden_layers must be a positive integer, found 0"):
        BertConfig.from_dict({**shape, "num_hidden_layers": 0})
    with pytest.raises(AutoftError, match=r"hidden_act 'swish' not supported; expected one of gelu, gelu_new, relu"):
        BertConfig.from_dict({**shape, "hidden_act": "swish"})


# ---------------------------------------------------------------- foreign name maps vs the table


@pytest.mark.parametrize("fmt", ["hf", "paddlenlp", "paddlehub1"])
def test_each_formats_rules_target_exactly_the_tables_names(fmt):
    """Every rule of a format's name table fills a parameter of the table and every encoder
    parameter is filled by a rule: the name maps and the table cannot drift apart."""
    from autoft.weights import FOREIGN

    config = tiny()
    targets = set()
    for rule in FOREIGN[fmt].TABLE.rules:
        indices = range(config.num_hidden_layers) if "{0}" in rule.target else [None]
        targets |= {rule.target.format(i) for i in indices}
    assert targets == {p.name for p in param_table(config)} | {"classifier.weight", "classifier.bias"}
