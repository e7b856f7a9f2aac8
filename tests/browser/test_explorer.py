"""The explorer in Chromium, on the exported page (file://, offline): selecting token k by mouse and by keyboard
updates every panel to token k (each panel's heading names it) and each panel's numbers equal the output's own arrays,
read here from the Output (not from the view); the token row stays virtualised at 8,000 tokens; chat turns are marked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ecco_widgets as ew
import zoo
from ecco_widgets.views import Explorer

WATCH = [5, 17]
METHOD = "grad_x_input"


@pytest.fixture(scope="module")
def case():
    lm = ew.LanguageModel(zoo.build("gpt2"))
    ids = torch.randint(0, zoo.VOCAB, (12,), generator=torch.Generator().manual_seed(7)).tolist()
    # 7 prompt tokens, 5 "generated" ones explained (as lm.generate gives them; this model has no tokenizer)
    out = lm.analyze_ids(ids, n_input_tokens=7, targets=slice(7, None), attribution=(METHOD, "saliency"),
                         activations=True, attention=True)
    nmf = out.run_nmf(n_components=3)
    return out, nmf, out.explore(watch=WATCH, nmf=nmf, selected_token=2, title="explorer")


_PANELS = """() => Object.fromEntries([...document.querySelectorAll('[data-panel]')].map(p => [p.dataset.panel, {
  heading: p.querySelector('.ew-panel-title').textContent,
  text: p.textContent,
  items: [...p.querySelectorAll('.ew-ex-item')].map(i => ({...i.dataset,
      value: i.querySelector('.ew-ex-val') ? Number(i.querySelector('.ew-ex-val').dataset.value) : null})),
  cells: [...p.querySelectorAll('[data-value]:not(.ew-ex-val)')].map(c => ({...c.dataset, value: Number(c.dataset.value)})),
}]))"""


_SETTLED = "() => [...document.querySelectorAll('.ew-root')].every(r => !r.ewExplorer || !r.ewExplorer.pending)"


def check_panels(page, k: int, out, nmf) -> None:
    """Every panel names token k and shows the output's values there (once a hover's later frames are drawn)."""
    page.wait_for_function(_SETTLED, timeout=5000)
    got = page.evaluate(_PANELS)
    assert sorted(got) == sorted(["saliency", "lens", "predictions", "watch", "factors", "attention"])
    for name, panel in got.items():
        assert f"token {k} " in panel["heading"] and out.tokens[k] in panel["heading"], (name, panel["heading"])
    # saliency: the strongest inputs of token k under the first method, by |attribution| (l2, rows sum to 1)
    sal = got["saliency"]
    if k in list(out.targets):
        row = out.attributions(METHOD, "l2_normalized")[list(out.targets).index(k), :k]
        order = sorted(range(k), key=lambda p: (-abs(row[p]), p))[:8]
        assert [int(i["position"]) for i in sal["items"]] == order
        np.testing.assert_allclose([i["value"] for i in sal["items"]], row[order], rtol=1e-5)
    else:
        assert "is not explained" in sal["text"] and not sal["items"]
    # lens column k: the rank of token k + 1 at every layer
    lens = got["lens"]
    if k < out.n_tokens - 1:
        ranks = [c["value"] for c in lens["cells"] if c.get("metric") == "rank"]
        assert ranks == out.ranks[:, k].tolist()
        probs = [c["value"] for c in lens["cells"] if c.get("metric") == "prob"]
        np.testing.assert_allclose(probs, out.target_probs[:, k], rtol=1e-5)
    else:
        assert "is the last" in lens["text"]
    # layer predictions after token k
    chips = got["predictions"]["cells"]
    expected = [(l, j) for l in range(out.n_layers) for j in range(5)]
    assert [(int(c["layer"]), int(c["rank"]) - 1) for c in chips] == expected
    assert [c["token"] for c in chips] == [out.vocab_text[int(out.topk_ids[l, k, j])] for l, j in expected]
    np.testing.assert_allclose([c["value"] for c in chips], [out.topk_probs[l, k, j] for l, j in expected], rtol=1e-5)
    # watched tokens after token k
    watch = np.array([[c["value"] for c in got["watch"]["cells"] if int(c["layer"]) == l] for l in range(out.n_layers)])
    np.testing.assert_array_equal(watch, out.watch_ranks(WATCH, k))
    # factors at token k, then the strongest neurons
    items = got["factors"]["items"]
    np.testing.assert_allclose([i["value"] for i in items if "factor" in i], nmf.factors[:, k], rtol=1e-5, atol=1e-7)
    neurons = [i for i in items if "neuronRank" in i]
    top = out.top_neurons(k, k=8)
    assert [(int(i["layer"]), int(i["neuron"])) for i in neurons] == [(t["layer"], t["neuron"]) for t in top]
    np.testing.assert_allclose([i["value"] for i in neurons], [t["value"] for t in top], rtol=1e-5)
    # attention of query k in the last layer, mean over heads: its strongest keys
    weights = out.attention_weights[-1][:, k].mean(0)
    keys = [int(i["key"]) for i in got["attention"]["items"]]
    assert keys == sorted((p for p in range(out.n_tokens) if weights[p] > 0), key=lambda p: (-weights[p], p))[:8]
    np.testing.assert_allclose([i["value"] for i in got["attention"]["items"]], weights[keys], rtol=1e-5)


def _selected(page) -> int:
    return page.evaluate("() => window.__ewModels[0].get('selected_token')")


def _tok(k: int) -> str:
    return f'.ew-vrow [data-token-index="{k}"]'


def test_select_by_mouse_updates_every_panel(case, probe, tmp_path):
    out, nmf, view = case
    probe.open_export(view, tmp_path / "explorer.html")
    page = probe.page
    assert page.evaluate("() => document.querySelectorAll('.ew-vrow [data-token-index]').length") == out.n_tokens
    check_panels(page, 2, out, nmf)  # selected_token=2 from Python
    for k in (out.n_input_tokens + 1, 0, out.n_tokens - 1):  # a generated (explained) token, the first, the last
        page.hover(_tok(k))
        check_panels(page, k, out, nmf)
    assert _selected(page) == 2, "hovering does not change the selection"
    k = out.n_input_tokens + 2
    page.click(_tok(k))
    assert _selected(page) == k
    page.mouse.move(1, 1)  # the mouse leaves: the panels stay on the selected token
    check_panels(page, k, out, nmf)
    # the saliency method switcher
    page.select_option('[data-panel="saliency"] select.ew-method', "saliency")
    assert page.evaluate("() => window.__ewModels[0].get('method')") == "saliency"
    assert "(saliency)" in page.text_content('[data-panel="saliency"] .ew-panel-title')
    probe.assert_clean()


_HEADINGS = """() => Object.fromEntries([...document.querySelectorAll('[data-panel]')].map(p =>
  [p.dataset.panel, p.querySelector('.ew-panel-title').textContent]))"""


def test_hover_spreads_the_panels_over_frames_and_a_newer_hover_wins(case, probe, tmp_path):
    """A hover writes the saliency panel in its own handler and the others in the next frames; a second hover before
    they are written drops the first one's rest (no panel is left on a stale token); a figure writes what is pending
    before it is drawn; a click writes every panel at once."""
    out, nmf, view = case
    probe.open_export(view, tmp_path / "explorer.html")
    page = probe.page
    a, b = out.n_input_tokens + 1, 4
    state = page.evaluate("""([a, b]) => {
      const root = document.querySelector('.ew-root'), over = (k) => root.querySelector(`.ew-vrow [data-token-index="${k}"]`)
        .dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
      const heads = () => Object.fromEntries([...root.querySelectorAll('[data-panel]')].map(p =>
        [p.dataset.panel, p.querySelector('.ew-panel-title').textContent]));
      over(a);
      const afterA = { pending: root.ewExplorer.pending, heads: heads() };
      over(b);
      return { afterA, afterB: { pending: root.ewExplorer.pending, heads: heads() } };
    }""", [a, b])
    for when, k in (("afterA", a), ("afterB", b)):
        heads = state[when]["heads"]
        assert state[when]["pending"], when
        assert f"token {k} " in heads["saliency"], (when, heads)
        assert f"token {k} " not in heads["predictions"], (when, heads)  # written in a later frame
    page.wait_for_function(_SETTLED, timeout=5000)
    assert all(f"token {b} " in h for h in page.evaluate(_HEADINGS).values())
    check_panels(page, b, out, nmf)
    # a figure flushes what a hover left for later frames
    flushed = page.evaluate("""(k) => {
      const root = document.querySelector('.ew-root');
      root.querySelector(`.ew-vrow [data-token-index="${k}"]`).dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
      const before = root.ewExplorer.pending;
      const svg = root.ewFigure.svg();
      return { before, after: root.ewExplorer.pending, svg: svg.length > 0, heads: Object.fromEntries(
        [...root.querySelectorAll('[data-panel]')].map(p => [p.dataset.panel, p.querySelector('.ew-panel-title').textContent])) };
    }""", a)
    assert (flushed["before"], flushed["after"], flushed["svg"]) == (True, False, True)
    assert all(f"token {a} " in h for h in flushed["heads"].values()), flushed["heads"]
    # a click (a selection) writes every panel in its own handler
    page.mouse.move(1, 1)
    page.wait_for_function(_SETTLED, timeout=5000)
    clicked = page.evaluate("""(k) => {
      const root = document.querySelector('.ew-root');
      root.querySelector(`.ew-vrow [data-token-index="${k}"]`).click();
      return { pending: root.ewExplorer.pending, heads: Object.fromEntries([...root.querySelectorAll('[data-panel]')]
        .map(p => [p.dataset.panel, p.querySelector('.ew-panel-title').textContent])) };
    }""", b + 1)
    assert not clicked["pending"]
    assert all(f"token {b + 1} " in h for h in clicked["heads"].values()), clicked
    probe.assert_clean()


def test_select_by_keyboard_updates_every_panel(case, probe, tmp_path):
    out, nmf, view = case
    probe.open_export(view, tmp_path / "explorer.html")
    page = probe.page
    page.click(_tok(0))
    page.mouse.move(1, 1)
    k = out.n_input_tokens + 1
    for _ in range(k):
        page.keyboard.press("ArrowRight")
    assert _selected(page) == k
    assert page.evaluate("() => document.activeElement.classList.contains('ew-vrow')")
    check_panels(page, k, out, nmf)
    page.keyboard.press("End")
    assert _selected(page) == out.n_tokens - 1
    check_panels(page, out.n_tokens - 1, out, nmf)
    page.keyboard.press("ArrowLeft")
    check_panels(page, out.n_tokens - 2, out, nmf)
    page.keyboard.press("Home")
    assert _selected(page) == 0
    check_panels(page, 0, out, nmf)
    probe.assert_clean()


def _long(n: int = 8000) -> Explorer:
    rng = np.random.default_rng(0)
    L = 30
    h = n // 2  # the assistant's turn starts here
    turns = [{"role": "system", "start": 0, "stop": 40}, {"role": "user", "start": 40, "stop": h},
             {"role": "assistant", "start": h, "stop": n}]
    special = np.zeros(n, bool)
    special[[0, 40, h]] = True
    return Explorer(tokens=[f" w{i}" for i in range(n)], n_input_tokens=h, turns=turns, special=special,
                    ranks=rng.integers(1, 5000, size=(L, n - 1)), target_probs=rng.random((L, n - 1)),
                    targets=np.arange(h, h + 100), attributions={"ig": rng.random((100, n))}, selected_token=h)


def test_8000_tokens_stay_virtualised_and_turns_are_marked(probe, tmp_path):
    view = _long()
    probe.open_export(view, tmp_path / "long.html")
    page = probe.page
    count = "() => document.querySelectorAll('.ew-vrow [data-token-index]').length"
    assert 0 < page.evaluate(count) < 1500
    assert page.is_visible(_tok(4000)), "the selected token is scrolled into view"
    assert "token 4000 " in page.text_content('[data-panel="lens"] .ew-panel-title')
    roles = page.evaluate("() => [...document.querySelectorAll('[data-turn-role]')].map(e => e.dataset.turnRole)")
    assert roles == ["assistant"]  # only the lines in view: the assistant's turn starts here
    assert "ew-special" in page.get_attribute(_tok(4000), "class")
    page.click(_tok(4001))
    page.keyboard.press("End")
    assert _selected(page) == 7999 and page.is_visible(_tok(7999))
    assert "token 7999 " in page.text_content('[data-panel="lens"] .ew-panel-title')
    assert page.evaluate(count) < 1500
    page.keyboard.press("Home")
    page.wait_for_selector(_tok(0))
    roles = page.evaluate("() => [...document.querySelectorAll('[data-turn-role]')].map(e => e.dataset.turnRole)")
    assert roles[:2] == ["system", "user"]
    # scrolling the row renders the lines that come into view, and only those
    first = page.evaluate("() => Math.min(...[...document.querySelectorAll('.ew-vrow [data-token-index]')].map(e => +e.dataset.tokenIndex))")
    page.evaluate("() => { const r = document.querySelector('.ew-vrow'); r.scrollTop = r.scrollHeight / 2; }")
    page.wait_for_function(f"() => Math.min(...[...document.querySelectorAll('.ew-vrow [data-token-index]')].map(e => +e.dataset.tokenIndex)) > {first + 1000}")
    assert page.evaluate(count) < 1500
    probe.assert_clean()


def test_python_sets_the_selection_in_the_host_shim(probe, tmp_path):
    view = _long(3000)
    probe.open_host(view, tmp_path / "host.html")
    page = probe.page
    page.evaluate("() => window.__ewSetFromPython('selected_token', 2500)")
    page.wait_for_selector(_tok(2500))
    assert "token 2500 " in page.text_content('[data-panel="lens"] .ew-panel-title')
    assert page.get_attribute(_tok(2500), "aria-selected") == "true"
    probe.assert_clean()
