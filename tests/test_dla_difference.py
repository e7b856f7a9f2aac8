"""The prompt pair's direct logit attribution difference (issue 28): A − B per head, MLP, layer and the accumulated
curve equals two separate ``out.logit_attribution`` calls subtracted here (random GPT-2 and Llama); the difference of
the totals equals the HF models' own logit differences; the layers x heads view holds the subtracted grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.errors import InputError, NotAvailableError
from ecco_widgets.views import LogitAttributionView, PromptPairView

IDS_A = [3, 17, 5, 99, 42, 7, 250, 12]
IDS_B = [3, 17, 5, 98, 42, 7, 250, 12]
TARGET, FOIL = 5, 17


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def case(request):
    model = zoo.build(request.param)
    lm = ew.LanguageModel(model)
    return model, lm, lm.analyze_ids(IDS_A, components=True), lm.analyze_ids(IDS_B, components=True)


def _grid(r) -> tuple[np.ndarray, np.ndarray]:
    """(heads (n_layers, n_heads), mlps (n_layers,)) from a head-unit result's labels ("3.h5", "3.mlp")."""
    n_layers = len(r.attn_by_layer)
    n_heads = 1 + max(int(lab.split(".h")[1]) for lab in r.labels if ".h" in lab)
    heads, mlps = np.zeros((n_layers, n_heads)), np.zeros(n_layers)
    for label, v in zip(r.labels, r.values.astype(np.float64)):
        layer, _, part = label.partition(".")
        if part.startswith("h"):
            heads[int(layer), int(part[1:])] = v
        elif part == "mlp":
            mlps[int(layer)] = v
    return heads, mlps


def test_difference_equals_two_calls_subtracted(case):
    model, _, out_a, out_b = case
    d = ew.compare(out_a, out_b).logit_attribution_difference(target=TARGET, foil=FOIL)
    last = len(IDS_A) - 1
    ra = out_a.logit_attribution(last, target=TARGET, foil=FOIL, unit="head")
    rb = out_b.logit_attribution(last, target=TARGET, foil=FOIL, unit="head")
    np.testing.assert_allclose(d.values, ra.values.astype(np.float64) - rb.values, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(d.attn_by_layer, ra.attn_by_layer.astype(np.float64) - rb.attn_by_layer, atol=1e-6)
    np.testing.assert_allclose(d.mlp_by_layer, ra.mlp_by_layer.astype(np.float64) - rb.mlp_by_layer, atol=1e-6)
    np.testing.assert_allclose(d.accumulated, ra.accumulated.astype(np.float64) - rb.accumulated, atol=1e-6)
    heads_a, mlps_a = _grid(ra)
    heads_b, mlps_b = _grid(rb)
    view = d.view()
    assert isinstance(view, LogitAttributionView)
    np.testing.assert_allclose(view.head_values, heads_a - heads_b, atol=1e-6)
    np.testing.assert_allclose(view.mlp_values, mlps_a - mlps_b, atol=1e-6)
    np.testing.assert_allclose(view.accumulated, d.accumulated, atol=1e-6)
    assert "prompt A − prompt B" in view.title and view.position == last
    # the total difference is the models' own: (logit diff on A) − (logit diff on B), from plain HF forwards
    with torch.no_grad():
        la = model(torch.tensor([IDS_A])).logits[0, -1].double()
        lb = model(torch.tensor([IDS_B])).logits[0, -1].double()
    want = float((la[TARGET] - la[FOIL]) - (lb[TARGET] - lb[FOIL]))
    assert d.logit == pytest.approx(want, rel=1e-4, abs=1e-5)
    assert float(np.sum(d.values, dtype=np.float64)) == pytest.approx(want, rel=1e-4, abs=1e-5)
    top = d.top(3)
    assert [t["value"] for t in top] == sorted([t["value"] for t in top], key=lambda v: -abs(v))


def test_columns_of_a_pair_with_gaps_and_the_default_target(case):
    _, lm, out_a, _ = case
    longer = lm.analyze_ids(IDS_A[:3] + [64] + IDS_A[3:], components=True)
    pair = ew.compare(out_a, longer)
    gap = int(np.flatnonzero(pair.alignment[:, 0] < 0)[0])
    with pytest.raises(InputError, match="gap in prompt A"):
        pair.logit_attribution_difference(column=gap)
    d = pair.logit_attribution_difference(column=2, unit="layer")  # default target: A's top prediction there
    top_a = out_a.logit_attribution(2, unit="layer")
    rb = longer.logit_attribution(2, target=top_a.target_id, unit="layer")
    assert d.a.target_id == top_a.target_id and d.b.target_id == top_a.target_id and d.b.position == 2
    np.testing.assert_allclose(d.values, top_a.values.astype(np.float64) - rb.values, atol=1e-6)
    with pytest.raises(NotAvailableError, match="unit='head'"):
        d.view()
    with pytest.raises(InputError, match="out of range"):
        pair.logit_attribution_difference(column=99)


def test_outputs_without_components_and_loaded_pairs_are_refused(case, tmp_path):
    _, lm, out_a, _ = case
    bare = lm.analyze_ids(IDS_B)
    with pytest.raises(NotAvailableError, match="components=True"):
        ew.compare(out_a, bare).logit_attribution_difference(target=TARGET)
    pair = ew.compare(out_a, out_a)
    back = ew.load(pair.save(tmp_path / "pair"))
    with pytest.raises(NotAvailableError, match="loaded from a file"):
        back.logit_attribution_difference(target=TARGET)


def test_the_pair_view_holds_the_difference_grid(case):
    _, lm, out_a, out_b = case
    pair = ew.compare(out_a, out_b)
    view = pair.view(target=TARGET, foil=FOIL)
    last = len(IDS_A) - 1
    heads_a, mlps_a = _grid(out_a.logit_attribution(last, target=TARGET, foil=FOIL, unit="head"))
    heads_b, mlps_b = _grid(out_b.logit_attribution(last, target=TARGET, foil=FOIL, unit="head"))
    np.testing.assert_allclose(view.dla_heads, heads_a - heads_b, atol=1e-6)
    np.testing.assert_allclose(view.dla_mlp, mlps_a - mlps_b, atol=1e-6)
    assert view.dla_column == last and "A − B" in view.dla_label
    assert view.dla_accumulated.shape == (heads_a.shape[0] + 1,)
    assert pair.view(components=False).dla_heads.size == 0
    assert ew.compare(out_a, lm.analyze_ids(IDS_B)).view().dla_heads.size == 0  # B has no components: no grid
    with pytest.raises(NotAvailableError, match="components=True"):
        ew.compare(out_a, lm.analyze_ids(IDS_B)).view(components=True)
    with pytest.raises(InputError, match="components must be"):
        pair.view(components="yes")
    with pytest.raises(ValueError, match="go together"):
        PromptPairView(tokens_a=["a"], tokens_b=["a"], alignment=[[0, 0]], differs=[0], ranks_a=[[0]],
                       ranks_b=[[0]], rank_diff=[[0.0]], dla_heads=[[1.0, 2.0]], dla_mlp=[1.0], dla_accumulated=[0.0])
