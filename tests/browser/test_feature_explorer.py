"""The FeatureExplorer of a real ``lm.analyze_ids(saes=[...])`` (random Llama, random top-k SAE) in Chromium, offline:
hovering or selecting a feature gives every token that feature's activation (data-value and a colour exactly where
it is active), equal to ``out.features[name].dense()``; the sparkline peaks at its largest token; the keyboard moves
and selects through the host shim; labels and the attribution bar come from the Python side."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from zoo import build

import ecco_widgets as ew
from ecco_widgets.analysis.features import SAE
from ecco_widgets.errors import SiteWarning
from test_foundation import WORDS, ToyTokenizer

IDS = [3, 17, 5, 99, 42, 7, 250, 12, 64, 8, 31, 2]
SITE = "blocks.1.hook_resid_post"
NAME = "sae"

_VALUES = "() => Array.from(document.querySelectorAll('.ew-tokens .ew-tok')).map(e => e.dataset.value == null ? null : Number(e.dataset.value))"
_BGS = "() => Array.from(document.querySelectorAll('.ew-tokens .ew-tok')).map(e => getComputedStyle(e).backgroundColor)"
_LISTED = "() => Array.from(document.querySelectorAll('.ew-fx-feat')).map(e => Number(e.dataset.feature))"


@pytest.fixture(scope="module")
def data():
    lm = ew.from_pretrained(build("llama"), tokenizer=ToyTokenizer(WORDS))
    g = torch.Generator().manual_seed(3)
    sae = SAE(W_enc=torch.randn(64, 48, generator=g), W_dec=torch.randn(48, 64, generator=g) / 10,
              b_enc=torch.randn(48, generator=g) * 0.1, b_dec=torch.zeros(64), architecture="topk", k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        out = lm.analyze_ids(IDS, saes={NAME: (sae, SITE)})
    dense = out.features[NAME].dense()
    fa = out.feature_attribution((sae, SITE), positions=[len(IDS) - 1])
    # the list first shows the token with the largest |attribution| (the last token's own features have none)
    shown = int(np.unravel_index(np.abs(fa.attributions[0]).argmax(), fa.attributions[0].shape)[0])
    listed = [i for i, _ in out.features[NAME].active(shown)]
    feature = next(f for f in listed if 0 < (dense[:, f] > 0).sum() < len(IDS))  # active at some tokens only
    sae.labels[feature] = "the <b>chosen</b> one"
    return {"out": out, "sae": sae, "dense": dense, "feature": feature, "fa": fa, "shown": shown, "lm": lm}


def _view(data, **kw):
    return data["out"].explore_features(NAME, sae=data["sae"], attribution=data["fa"], **kw)


@pytest.mark.parametrize("where", ["host", "export"])
def test_hovering_a_feature_colours_the_tokens_with_its_activations(probe, tmp_path, data, where):
    (probe.open_host if where == "host" else probe.open_export)(_view(data), tmp_path / f"{where}.html")
    page, f, dense = probe.page, data["feature"], data["dense"]
    assert page.evaluate(_LISTED) == [i for i, _ in data["out"].features[NAME].active(data["shown"])]
    plain = page.evaluate(_BGS)
    page.hover(f'.ew-fx-feat[data-feature="{f}"]')
    values = page.evaluate(_VALUES)
    np.testing.assert_allclose(values, dense[:, f], rtol=1e-6, atol=0)
    bgs = page.evaluate(_BGS)
    active = dense[:, f] > 0
    assert [b != p for b, p in zip(bgs, plain)] == active.tolist()  # coloured exactly where it fires
    strongest = int(np.argmax(dense[:, f]))
    assert len({bgs[i] for i in np.nonzero(active)[0]}) == len(set(dense[active, f].tolist()))  # values differ, so do colours
    # the sparkline: one point per token, highest (smallest y) at the strongest token
    points = page.eval_on_selector(f'svg.ew-fx-spark[data-feature="{f}"] .ew-spark-line', "e => e.getAttribute('points')")
    ys = [float(p.split(",")[1]) for p in points.split()]
    assert len(ys) == len(IDS) and int(np.argmin(ys)) == strongest
    # the label, as text
    label = page.text_content(f'.ew-fx-feat[data-feature="{f}"] .ew-fx-label')
    assert label == "the <b>chosen</b> one" and page.query_selector(".ew-fx-label b") is None
    # the attribution bar: the result's own value of that latent at the shown token
    row = data["fa"].indices[data["shown"]].tolist()
    want = float(data["fa"].attributions[0, data["shown"], row.index(f)])
    got = float(page.get_attribute(f'.ew-fx-feat[data-feature="{f}"] .ew-fx-attr', "data-value"))
    assert got == pytest.approx(want, rel=1e-6)
    page.mouse.move(1, 1)
    page.wait_for_function(f"() => ({_VALUES})().every(v => v === null)")
    probe.assert_clean()


def test_keyboard_selects_a_token_then_a_feature(probe, tmp_path, data):
    probe.open_host(_view(data), tmp_path / "host.html")
    page, dense, feats = probe.page, data["dense"], data["out"].features[NAME]
    page.focus('.ew-tokens .ew-tok[data-index="0"]')
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert ["selected_token", 3] in probe.sets()
    page.mouse.move(1, 1)
    listed = page.evaluate(_LISTED)
    assert listed == [i for i, _ in feats.active(3)]
    page.focus(f'.ew-fx-feat[data-feature="{listed[0]}"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert ["selected_feature", listed[1]] in probe.sets()
    page.keyboard.press("Tab")  # focus leaves the list: the pinned feature stays
    np.testing.assert_allclose(page.evaluate(_VALUES), dense[:, listed[1]], rtol=1e-6)
    assert page.get_attribute(f'.ew-fx-feat[data-feature="{listed[1]}"]', "aria-selected") == "true"
    # from Python: another feature pinned
    page.evaluate("(f) => window.__ewSetFromPython('selected_feature', f)", listed[0])
    page.wait_for_function("(f) => document.querySelector('.ew-fx-feat.ew-selected')?.dataset.feature === String(f)",
                           arg=listed[0])
    np.testing.assert_allclose(page.evaluate(_VALUES), dense[:, listed[0]], rtol=1e-6)
    probe.assert_clean()


def test_dark_theme_keeps_the_strongest_token_brightest(probe, tmp_path, data):
    f, dense = data["feature"], data["dense"]
    probe.open_export(_view(data, theme="dark", selected_feature=f), tmp_path / "dark.html")
    page = probe.page
    assert page.get_attribute(".ew-root", "data-ew-theme") == "dark"
    lum = page.evaluate("""() => Array.from(document.querySelectorAll('.ew-tokens .ew-tok')).map(e => {
        const m = getComputedStyle(e).backgroundColor.match(/\\d+/g).map(Number);
        return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; })""")
    active = np.nonzero(dense[:, f] > 0)[0]
    strongest, weakest = active[np.argmax(dense[active, f])], active[np.argmin(dense[active, f])]
    assert lum[strongest] > lum[weakest]
    probe.assert_clean()


def test_svg_and_png_hold_the_tokens_the_list_and_the_legend(data, tmp_path):
    import struct
    import xml.etree.ElementTree as ET

    f = data["feature"]
    view = _view(data, selected_feature=f, title="features")
    root = ET.parse(view.save_svg(tmp_path / "fx.svg", theme="dark")).getroot()
    assert root.get("data-ew-theme") == "dark"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "features" in texts and f"#{f}" in texts and "the <b>chosen</b> one" in texts
    assert any(g.tag.endswith("linearGradient") for g in root.iter()), "the legend's colour bar"
    assert any(g.tag.endswith("polyline") for g in root.iter()), "the sparkline"
    head = view.save_png(tmp_path / "fx.png", scale=1).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", head[16:24])) > 100


_CARD_VALUES = "() => Array.from(document.querySelectorAll('.ew-fx-card .ew-fd-top .ew-fd-ctx')).map(c => ({value: " \
    "Number(c.querySelector('.ew-fd-val').dataset.value), acts: Array.from(c.querySelectorAll('.ew-tok'))" \
    ".map(t => Number(t.dataset.value)), raw: Array.from(c.querySelectorAll('.ew-tok')).map(t => t.title)}))"


@pytest.fixture(scope="module")
def dash(data):
    """ew.feature_dashboard of the same SAE over a few texts (the analysed one among them: every feature has
    contexts)."""
    rng = np.random.default_rng(5)
    docs = [" ".join(f"w{i}" for i in rng.integers(1, 60, size=8)) for _ in range(4)]
    docs.append(data["lm"].tokenizer.decode(IDS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SiteWarning)
        return ew.feature_dashboard(data["lm"], data["sae"], docs, site=SITE, k=4, window=2, n_samples=8,
                                    n_promoted=3, progress=False)


@pytest.mark.parametrize("where,theme", [("host", "light"), ("export", "dark")])
def test_clicking_a_feature_opens_its_dashboard_card(probe, tmp_path, data, dash, where, theme):
    (probe.open_host if where == "host" else probe.open_export)(_view(data, dashboard=dash, theme=theme),
                                                                tmp_path / f"{where}.html")
    page, f = probe.page, data["feature"]
    assert page.is_hidden(".ew-fx-card")
    page.click(f'.ew-fx-feat[data-feature="{f}"]')
    page.wait_for_selector(f'.ew-fx-card .ew-fd-card[data-feature="{f}"]')
    assert page.query_selector(".ew-fx-card .ew-fx-nocard") is None
    row = dash.row(f)
    got = page.evaluate(_CARD_VALUES)
    slots = [j for j in range(dash.k) if dash.top_docs[row, j] >= 0]
    assert len(got) == len(slots) > 0
    raw = dict(zip(dash.vocab_ids.tolist(), dash.vocab_raw or dash.vocab_strings))
    for ctx, j in zip(got, slots):  # the dashboard's own arrays, slot by slot
        assert ctx["value"] == float(dash.top_values[row, j])
        ids = dash.top_context_ids[row, j]
        assert ctx["acts"] == [float(v) for v, i in zip(dash.top_context_values[row, j], ids) if i >= 0]
        assert ctx["raw"] == [raw[int(i)] for i in ids if i >= 0]
    hist = page.evaluate("() => Array.from(document.querySelectorAll('.ew-fx-card .ew-fd-hist rect'))"
                         ".map(r => Number(r.dataset.value))")
    assert sum(hist) == int(dash.hist[row].sum()) == int(dash.fire_counts[row])
    if theme == "dark":  # the card on the dark background
        bg = page.evaluate("() => getComputedStyle(document.querySelector('.ew-fx-card .ew-fd-card')).backgroundColor")
        assert sum(int(x) for x in re.findall(r"\d+", bg)[:3]) < 200, bg
    # Escape closes the card and gives the focus back to the feature's row
    page.focus(f'.ew-fx-card .ew-fx-card-close')
    page.keyboard.press("Escape")
    page.wait_for_selector(".ew-fx-card", state="hidden")
    assert page.evaluate("() => document.activeElement.dataset.feature") == str(f)
    page.keyboard.press("Enter")  # the pinned feature's card opens again
    page.wait_for_selector(f'.ew-fx-card .ew-fd-card[data-feature="{f}"]')
    probe.assert_clean()
