"""The explorer's components and features panels in Chromium, on the exported page (file://, offline): selecting
token k (click, keys, hover) shows token k's direct logit attribution (per layer attention and MLP, the logit after
each block, its strongest heads) and its strongest features, read from the DOM and compared with separate
``out.logit_attribution`` / ``out.features[name].active`` calls; a dark page and the SVG figure include them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.analysis.features import SAE
from ecco_widgets.errors import SiteWarning

IDS = [3, 17, 5, 99, 42, 7, 250, 12, 64, 8]


@pytest.fixture(scope="module")
def case():
    model = zoo.build("gpt2")
    lm = ew.LanguageModel(model)
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(0)
    sae = SAE(W_enc=torch.randn(d, 48, generator=g), W_dec=torch.randn(48, d, generator=g) / 10,
              b_enc=torch.randn(48, generator=g) - 0.5, b_dec=torch.zeros(d))
    sae.labels = {i: f"latent <{i}>" for i in range(0, 48, 3)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)  # a random dictionary fits no site
        out = lm.analyze_ids(IDS, n_input_tokens=6, components=True, saes={"s": (sae, "blocks.1.hook_resid_post")})
    return out, out.explore(top_heads=5, top_features=4, feature_labels=[sae], selected_token=2), sae


_READ = """() => {
  const p = (n) => document.querySelector(`[data-panel="${n}"]`);
  const vals = (el, sel) => [...el.querySelectorAll(sel)].map(e => Number(e.dataset.value));
  const c = p('components'), f = p('features');
  return {
    panels: [...document.querySelectorAll('[data-panel]')].map(e => e.dataset.panel),
    heading: c.querySelector('.ew-panel-title').textContent, text: c.textContent,
    attn: vals(c, '[data-part="attn"]'), mlp: vals(c, '[data-part="mlp"]'), after: vals(c, '[data-part="after"]'),
    heads: [...c.querySelectorAll('.ew-ex-item[data-head]')].map(e => [+e.dataset.layer, +e.dataset.head,
      Number(e.querySelector('.ew-ex-val').dataset.value)]),
    fheading: f.querySelector('.ew-panel-title').textContent,
    features: [...f.querySelectorAll('.ew-ex-item[data-feature]')].map(e => [+e.dataset.feature,
      Number(e.querySelector('.ew-ex-val').dataset.value), e.querySelector('.ew-ex-flabel').textContent]),
  };
}"""
_SETTLED = "() => [...document.querySelectorAll('.ew-root')].every(r => !r.ewExplorer || !r.ewExplorer.pending)"


def check(page, k: int, out, sae) -> None:
    page.wait_for_function(_SETTLED, timeout=5000)
    got = page.evaluate(_READ)
    assert got["panels"][-2:] == ["components", "features"]
    assert f"token {k} " in got["heading"] and f"token {k} " in got["fheading"]
    if k == 0:
        assert "nothing predicted it" in got["text"] and not got["attn"]
    else:
        r = out.logit_attribution(k - 1, target=IDS[k], unit="head")
        np.testing.assert_allclose(got["attn"], r.attn_by_layer, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got["mlp"], r.mlp_by_layer, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(got["after"], r.accumulated[1:], rtol=1e-6, atol=1e-7)
        if k >= out.n_input_tokens:  # the explained (generated) tokens list their strongest heads
            heads = [(int(l), int(h), float(v)) for kind, l, h, v in zip(r.kinds, r.layers, r.indices, r.values)
                     if kind == "head"]
            want = sorted(heads, key=lambda t: -abs(t[2]))[:5]
            assert [h[:2] for h in got["heads"]] == [[l, h] for l, h, _ in want]
            np.testing.assert_allclose([h[2] for h in got["heads"]], [v for _, _, v in want], rtol=1e-6)
        else:
            assert not got["heads"] and "listed for the explained" in got["text"]
    active = sorted(out.features["s"].active(k), key=lambda t: -t[1])[:4]
    assert [f[0] for f in got["features"]] == [i for i, _ in active]
    np.testing.assert_allclose([f[1] for f in got["features"]], [v for _, v in active], rtol=1e-6)
    assert [f[2] for f in got["features"]] == [sae.labels.get(i, "\u2013") for i, _ in active]


def _tok(k: int) -> str:
    return f'.ew-vrow [data-token-index="{k}"]'


def test_selecting_a_token_updates_the_components_and_features_panels(case, probe, tmp_path):
    out, view, sae = case
    probe.open_export(view, tmp_path / "explorer.html")
    page = probe.page
    check(page, 2, out, sae)
    page.click(_tok(7))
    assert page.evaluate("() => window.__ewModels[0].get('selected_token')") == 7
    check(page, 7, out, sae)
    page.keyboard.press("ArrowLeft")
    check(page, 6, out, sae)
    page.keyboard.press("Home")
    check(page, 0, out, sae)
    page.keyboard.press("End")
    check(page, len(IDS) - 1, out, sae)
    page.hover(_tok(4))  # a preview follows too
    check(page, 4, out, sae)
    assert page.evaluate("() => document.querySelectorAll('[data-panel=\"features\"] img').length") == 0
    svg = page.evaluate("() => document.querySelector('.ew-root').ewFigure.svg()")
    assert "Components of" in svg and "Features at" in svg and "latent &lt;" in svg
    probe.assert_clean()


def test_dark_theme_colours_the_bars_on_the_dark_scale(case, probe, tmp_path):
    out, view, _ = case
    view.theme = "dark"
    try:
        probe.open_export(view, tmp_path / "dark.html")
        page = probe.page
        page.wait_for_function(_SETTLED, timeout=5000)
        theme, fill = page.evaluate("""() => [document.querySelector('.ew-root').dataset.ewTheme,
          getComputedStyle(document.querySelector('[data-panel="components"] .ew-ex-signed .ew-ex-bar'))
            .getPropertyValue('--ew-fill').trim()]""")
        assert theme == "dark" and fill.startswith("rgb(")
        probe.assert_clean()
    finally:
        view.theme = "auto"
