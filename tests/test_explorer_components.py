"""The explorer's components and features panels (issues 28 and 26): the payload equals separate calls of
``out.logit_attribution`` / ``out.features[name].active`` (random tiny GPT-2 and Llama), the per-layer logit read
after the last block equals the model's own logit from a plain HF forward, the strongest heads are ranked here with
a sort, and the panels are absent (no error) without their data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.analysis.features import SAE
from ecco_widgets.errors import InputError, NotAvailableError, SiteWarning
from ecco_widgets.views import Explorer, ViewValueError

IDS = [3, 17, 5, 99, 42, 7, 250, 12]


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def case(request):
    model = zoo.build(request.param)
    lm = ew.LanguageModel(model)
    return model, lm, lm.analyze_ids(IDS, components=True)


def test_components_payload_equals_logit_attribution_per_token(case):
    model, lm, out = case
    view = out.explore(head_tokens=[3, -1], top_heads=4)
    assert "components" in view.panels and "features" not in view.panels
    n = len(IDS)
    assert view.component_tokens.tolist() == list(range(1, n))
    with torch.no_grad():
        logits = model(torch.tensor([IDS])).logits[0].double().numpy()
    for row, k in enumerate(range(1, n)):
        r = out.logit_attribution(k - 1, target=IDS[k], unit="layer")
        np.testing.assert_allclose(view.component_attn[row], r.attn_by_layer, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(view.component_mlp[row], r.mlp_by_layer, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(view.component_accumulated[row], r.accumulated, rtol=1e-5, atol=1e-6)
        assert view.component_logit[row] == pytest.approx(r.logit, rel=1e-6)
        # independent of the decomposition: the logit after the last block is the model's own logit of token k
        assert view.component_accumulated[row, -1] == pytest.approx(logits[k - 1, IDS[k]], rel=1e-4, abs=1e-5)
    assert view.component_head_tokens.tolist() == [3, n - 1]
    for row, k in enumerate([3, n - 1]):
        r = out.logit_attribution(k - 1, target=IDS[k], unit="head")
        heads = [(int(layer), int(h), float(v)) for kind, layer, h, v in zip(r.kinds, r.layers, r.indices, r.values)
                 if kind == "head"]
        want = sorted(heads, key=lambda t: -abs(t[2]))[:4]
        assert view.component_heads[row].tolist() == [[layer, h] for layer, h, _ in want]
        np.testing.assert_allclose(view.component_head_values[row], [v for _, _, v in want], rtol=1e-5, atol=1e-7)


def test_default_head_tokens_are_the_explained_ones(case):
    _, lm, _ = case
    explained = lm.analyze_ids(IDS, components=True, attribution=("grad_x_input",), targets=[2, 5])
    assert explained.explore().component_head_tokens.tolist() == [2, 5]
    assert lm.analyze_ids(IDS, components=True).explore().component_head_tokens.tolist() == [len(IDS) - 1]


def _sae(d: int, width: int, seed: int) -> SAE:
    g = torch.Generator().manual_seed(seed)
    return SAE(W_enc=torch.randn(d, width, generator=g), W_dec=torch.randn(width, d, generator=g) / 10,
               b_enc=torch.randn(width, generator=g) - 0.5, b_dec=torch.zeros(d))


def test_features_payload_equals_active_per_token(case):
    model, lm, _ = case
    d = model.config.hidden_size
    a, b = _sae(d, 48, 0), _sae(d, 40, 1)
    a.labels = {i: f"latent {i} <b>" for i in range(0, 48, 2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)  # random dictionaries fit no site
        out = lm.analyze_ids(IDS, saes={"a": (a, "blocks.1.hook_resid_post"), "b": (b, "blocks.0.hook_mlp_out")})
    view = out.explore(top_features=3, feature_labels=[a, b])
    assert view.panels[-1] == "features" and "components" not in view.panels
    assert view.feature_names == ["a", "b"]
    for s, name in enumerate(["a", "b"]):
        for k in range(len(IDS)):
            active = sorted(out.features[name].active(k), key=lambda t: -t[1])
            assert view.feature_active[s, k] == len(active)
            shown = [(int(i), float(v)) for i, v in zip(view.feature_indices[s, k], view.feature_values[s, k])
                     if i >= 0]
            assert [i for i, _ in shown] == [i for i, _ in active[:3]]
            np.testing.assert_allclose([v for _, v in shown], [v for _, v in active[:3]], rtol=1e-6)
            assert all(v == 0 for i, v in zip(view.feature_indices[s, k], view.feature_values[s, k]) if i < 0)
    shown_a = set(view.feature_indices[0][view.feature_indices[0] >= 0].tolist())
    assert view.feature_labels[0] == {str(i): f"latent {i} <b>" for i in sorted(shown_a) if i % 2 == 0}
    assert view.feature_labels[1] == {}
    by_name = out.explore(top_features=3, feature_labels={"b": {int(view.feature_indices[1, 0, 0]): "x"}})
    assert by_name.feature_labels == [{}, {str(view.feature_indices[1, 0, 0]): "x"}]


def test_absent_data_no_panel_and_clear_errors(case, monkeypatch):
    _, lm, out = case
    bare = lm.analyze_ids(IDS)
    assert "components" not in bare.explore().panels and "features" not in bare.explore().panels
    with pytest.raises(NotAvailableError, match="components=True"):
        bare.explore(components=True)
    assert "components" not in out.explore(components=False).panels
    words = out.explore(unit="word")  # a by-word output has no recorded forward: no panel, no error
    assert "components" not in words.panels
    for heavy in ("logit_attribution", "logit_attributions"):
        monkeypatch.setattr(type(out), heavy, lambda *a, **k: pytest.fail("heavy work before the checks"))
    for bad, match in (({"top_heads": 0}, "top_heads"), ({"top_features": -1}, "top_features"),
                       ({"components": "yes"}, "components"), ({"head_tokens": "3"}, "head_tokens"),
                       ({"feature_labels": {"nope": {}}}, "nope"), ({"feature_labels": [1, 2]}, "entries")):
        with pytest.raises(InputError, match=match):
            out.explore(**bad)


def test_plain_arrays_are_checked():
    ok = dict(tokens=["a", "b", "c"], component_tokens=[1, 2], component_attn=[[1.0], [2.0]],
              component_mlp=[[0.5], [-1.0]], component_accumulated=[[0.0, 1.5], [0.0, 1.0]])
    v = Explorer(**ok)
    assert v.panels == ["components"] and v.component_logit.tolist() == [1.5, 1.0]
    for bad, match in (({"component_tokens": [0, 1]}, "1..2"), ({"component_mlp": [[0.5]]}, "component_mlp"),
                       ({"component_accumulated": [[0.0], [1.0]]}, "n_layers \\+ 1"),
                       ({"component_attn": [[np.nan], [1.0]]}, "finite"),
                       ({"component_head_tokens": [3], "component_heads": [[[0, 0]]],
                         "component_head_values": [[1.0]]}, "component_head_tokens"),
                       ({"component_head_tokens": [1], "component_heads": [[[1, 0]]],
                         "component_head_values": [[1.0]]}, "layers in 0..0")):
        with pytest.raises(ViewValueError, match=match):
            Explorer(**{**ok, **bad})
    f = dict(tokens=["a", "b"], feature_names=["s"], feature_indices=[[[3], [-1]]], feature_values=[[[1.0], [0.0]]])
    assert Explorer(**f).panels == ["features"] and Explorer(**f).feature_active.tolist() == [[1, 0]]
    with pytest.raises(ViewValueError, match="feature_indices"):
        Explorer(**{**f, "feature_indices": [[[3]]]})
    with pytest.raises(ViewValueError, match="feature_labels"):
        Explorer(**{**f, "feature_labels": [{}, {}]})


def test_exported_page_holds_the_panels_arrays(case, tmp_path):
    _, _, out = case
    text = out.explore().save_html(tmp_path / "x.html").read_text()
    assert '"component_attn":{"base64":' in text and '"component_heads":{"base64":' in text
