"""ContextMixingView (issue 28): what ``out.context_mixing(method).view()`` sends equals the result's per-layer and
rolled-out matrices, on a random tiny GPT-2 and Llama (GQA), for the three methods; rollout's also equals its
definition written here (the model's own eager attention averaged over heads, plus I, rows normalised, multiplied);
and bad input is refused with a message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.views.arrays import array_to_json
from ecco_widgets.views.context_mixing import MAX_VALUES
from test_foundation import WORDS, ToyTokenizer

IDS = [5, 17, 33, 2, 99, 140, 7, 61]
TARGETS = [3, 7]
METHODS = ["value_zeroing", "alti_logit", "rollout"]


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def case(request):
    model = zoo.build(request.param)
    out = ew.from_pretrained(model, tokenizer=ToyTokenizer(WORDS)).analyze_ids(IDS, attribution=METHODS,
                                                                                targets=TARGETS)
    return model, out


def test_the_view_sends_the_results_matrices_per_layer_and_rolled_out(case):
    _, out = case
    for method in METHODS:
        mixing = out.context_mixing(method)
        view = mixing.view()
        assert view.method == method and view.tokens == out.tokens and view.targets.tolist() == TARGETS
        np.testing.assert_array_equal(view.layers, mixing.layers)
        np.testing.assert_array_equal(view.rolled, mixing.rolled)
        np.testing.assert_array_equal(view.score, out.attributions(method))  # the row's colours: the method's score
        for name in ("layers", "rolled", "score"):  # binary float32 buffers on the wire
            wire = array_to_json(getattr(view, name))
            assert isinstance(wire["view"], memoryview) and wire["dtype"] == "float32"
        for i, t in enumerate(TARGETS):  # what the grid of target t shows: the tokens before it
            layers, rolled = mixing.at(t)
            np.testing.assert_array_equal(view.layers[:, i, :t], layers[:, :t])
            np.testing.assert_array_equal(view.rolled[:, i, :t], rolled[:, :t])


def test_rollout_in_the_view_is_its_definition(case):
    model, out = case
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(torch.tensor([IDS]), output_attentions=True, use_cache=False).attentions
    model.set_attn_implementation("sdpa")
    view, n = out.context_mixing("rollout").view(), len(IDS)
    r = torch.eye(n)
    for layer, a in enumerate(attentions):
        m = a[0].mean(0) + torch.eye(n)
        m = m / m.sum(-1, keepdim=True)
        r = m @ r
        for i, t in enumerate(TARGETS):  # the row predicting token t is t - 1 (causal: the rows of the prefix)
            np.testing.assert_allclose(view.layers[layer, i, :t], m[t - 1, :t], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(view.rolled[layer, i, :t], r[t - 1, :t], rtol=1e-4, atol=1e-6)


def test_position_and_selection(case):
    _, out = case
    mixing = out.context_mixing("rollout")
    assert mixing.view().selected_token == -1  # the last explained token
    assert mixing.view(position=3).selected_token == 3
    assert mixing.view(position=-1).selected_token == 7
    with pytest.raises(ew.InputError, match=r"Position 5 was not explained; explained positions: \[3, 7\]"):
        mixing.view(position=5)
    view = mixing.view(mode="rolled")
    assert view.mode == "rolled"
    view.selected_token = 3
    with pytest.raises(ValueError, match=r"selected_token: 4 is not an explained position.*\[3, 7\]"):
        view.selected_token = 4
    with pytest.raises(ValueError, match="mode: 'sum' is not one of layer, rolled"):
        view.mode = "sum"
    with pytest.raises(ValueError, match="selected_cell"):
        view.selected_cell = [99, 0]


def test_bad_input_is_refused_with_a_message():
    tokens = ["a", "b", "c"]
    ok = np.full((2, 1, 3), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"layers: expected shape \(2, 1, 3\)"):
        ew.ContextMixingView(tokens, [2], np.zeros((2, 1, 4)), ok)
    with pytest.raises(ValueError, match="targets: positions must be distinct, in 1..2"):
        ew.ContextMixingView(tokens, [0], ok, ok)
    with pytest.raises(ValueError, match="targets: no explained token"):
        ew.ContextMixingView(tokens, [], ok, ok)
    with pytest.raises(ValueError, match="rolled: contains NaN"):
        ew.ContextMixingView(tokens, [2], ok, np.full((2, 1, 3), np.nan))
    with pytest.raises(ValueError, match=r"score: expected shape \(1, 3\)"):
        ew.ContextMixingView(tokens, [2], ok, ok, score=np.zeros((1, 2)))
    n = 1000  # 5 layers x 999 targets x 1,000 tokens: over the limit, refused before any array is built
    big = np.broadcast_to(np.float32(0), (5, n - 1, n))
    assert big.size > MAX_VALUES
    with pytest.raises(ValueError, match="over the view's 4,000,000: explain fewer tokens"):
        ew.ContextMixingView(["x"] * n, np.arange(1, n), big, big)


def test_the_explorer_shows_the_methods_as_saliency_with_the_views_row_colours(case):
    """"Linked to the explorer": out.explore() lists the context-mixing methods among its attribution methods, and
    its saliency row of each target is the view's row colours (the method's score) as the explorer's default
    "l2_normalized" share: |score| / sum |score| over the row (ALTI-Logit's scores are signed)."""
    _, out = case
    explorer = out.explore()
    assert list(explorer.methods) == METHODS
    for m, method in enumerate(METHODS):
        score = np.abs(out.context_mixing(method).view().score.astype(np.float64))
        np.testing.assert_allclose(explorer.attributions[m], score / score.sum(-1, keepdims=True), rtol=1e-5)
