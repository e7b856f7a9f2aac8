"""The explorer's context-mixing panel: its arrays equal ``out.context_mixing(method).layers / .rolled`` (each target's
row, per layer and rolled out) for every method computed, on a random tiny GPT-2; binary float32 on the wire; absent
(no error) when no context mixing was computed; bad arrays refused with a message."""

from __future__ import annotations

import numpy as np
import pytest

import ecco_widgets as ew
import zoo
from ecco_widgets.views import Explorer, ViewValueError
from ecco_widgets.views.arrays import array_to_json
from test_foundation import WORDS, ToyTokenizer

IDS = [5, 17, 33, 2, 99, 140, 7, 61]
TARGETS = [3, 7]
METHODS = ["value_zeroing", "alti_logit", "rollout"]


@pytest.fixture(scope="module")
def lm():
    return ew.from_pretrained(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))


def test_the_panel_sends_each_methods_matrices_per_target(lm):
    out = lm.analyze_ids(IDS, attribution=METHODS + ["grad_x_input"], targets=TARGETS)
    view = out.explore()
    assert "mixing" in view.panels and view.panels[-1] == "mixing"
    assert view.mixing_methods == METHODS and view.mixing_targets.tolist() == TARGETS
    n_layers = out.context_mixing("rollout").layers.shape[0]
    assert view.mixing_layers.shape == view.mixing_rolled.shape == (3, n_layers, 2, len(IDS))
    for i, method in enumerate(METHODS):
        mixing = out.context_mixing(method)
        for r, t in enumerate(TARGETS):  # what the panel draws for target t
            layers, rolled = mixing.at(t)
            np.testing.assert_array_equal(view.mixing_layers[i, :, r], layers)
            np.testing.assert_array_equal(view.mixing_rolled[i, :, r], rolled)
    assert (view.mixing_layers[1] < 0).any()  # alti_logit is signed (the view's diverging scale)
    for name in ("mixing_layers", "mixing_rolled"):
        wire = array_to_json(getattr(view, name))
        assert isinstance(wire["view"], memoryview) and wire["dtype"] == "float32"


def test_one_method_only(lm):
    out = lm.analyze_ids(IDS, attribution=["rollout"], targets=[5])
    view = out.explore(selected_token=5)
    layers, rolled = out.context_mixing("rollout").at(5)
    assert view.mixing_methods == ["rollout"] and view.mixing_layers.shape == (1, *layers.shape[:1], 1, len(IDS))
    np.testing.assert_array_equal(view.mixing_layers[0, :, 0], layers)
    np.testing.assert_array_equal(view.mixing_rolled[0, :, 0], rolled)


def test_no_mixing_no_panel(lm):
    view = lm.analyze_ids(IDS, attribution=["grad_x_input"], targets=TARGETS).explore()
    assert "mixing" not in view.panels and "saliency" in view.panels
    assert view.mixing_methods == [] and view.mixing_layers.size == 0 and view.mixing_rolled.size == 0
    assert "mixing" not in lm.analyze_ids(IDS).explore().panels


def test_plain_arrays_are_checked():
    tokens = ["a", "b", "c"]
    layers = np.zeros((1, 2, 1, 3), np.float32)
    v = Explorer(tokens=tokens, mixing_methods=["rollout"], mixing_targets=[2], mixing_layers=layers)
    assert v.panels == ["mixing"]
    np.testing.assert_array_equal(v.mixing_rolled, layers)  # rolled defaults to the per-layer matrices
    with pytest.raises(ViewValueError, match="mixing_layers: expected"):
        Explorer(tokens=tokens, mixing_methods=["rollout", "alti_logit"], mixing_targets=[2], mixing_layers=layers)
    with pytest.raises(ViewValueError, match="mixing_targets"):
        Explorer(tokens=tokens, mixing_methods=["rollout"], mixing_targets=[5], mixing_layers=layers)
    with pytest.raises(ViewValueError, match="mixing_rolled"):
        Explorer(tokens=tokens, mixing_methods=["rollout"], mixing_targets=[2], mixing_layers=layers,
                 mixing_rolled=np.zeros((1, 2, 1, 2)))
