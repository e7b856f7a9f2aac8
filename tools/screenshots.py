"""Take the screenshots of the README and the docs: render every view from the bundled model, export, shoot each.

Each view is shot in the light theme (docs/img/<view>.png, in the README) and the dark one (<view>_dark.png).

Run: .venv/bin/python tools/screenshots.py [NAME ...]   (needs Debian's chromium and playwright; writes
docs/img/*.png; names: only those views, e.g. logit_attribution context_mixing feature_dashboard)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from pydoc_data.topics import topics

import ecco_widgets as ew

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.chromium import CHROMIUM_ARGS, chromium_executable  # noqa: E402


def build_views(only: list[str]) -> dict[str, ew.views.EccoView]:
    lm = ew.demo_model()
    if only and set(only) <= set(NEWER):
        return {name: view for name, view in newer_views(lm).items() if name in only}
    out = lm.generate("The countries of the European Union are:\n1. Austria\n2. Belgium\n3.", max_new_tokens=6,
                      attribution=("ig", "grad_x_input"), activations=True, attention=True)
    keys = lm.analyze("The keys to the cabinet")
    text = lm.analyze("The old lighthouse keeper climbed the stairs every night. He lit the lamp, wiped the glass "
                      "and watched the ships pass. In the morning he slept, and the sea was quiet.",
                      activations=True)
    nmf = text.run_nmf(n_components=6)
    layer = 20
    strongest = np.argsort(-text.activations[text.activation_layers.index(layer)].max(0))[:12]
    return {
        "rank_grid": out.rankings(title="Rank of the next token at every layer"),
        "rank_grid_kl": out.rankings(metric="kl", title="KL to the last layer (nats), same grid"),
        "layer_predictions": out.layer_predictions(position=-1, topk=4, title="Top predictions per layer"),
        "rank_watch": keys.rankings_watch([" is", " are"], position=-1, title="' is' vs ' are' after the keys"),
        "saliency": out.primary_attributions(title="Input saliency (hover a generated token)"),
        "factor_explorer": nmf.explore(title="Neuron activation factors"),
        "neuron_heatmap": text.neuron_heatmap(layer, [int(i) for i in strongest], title=f"Layer {layer} neurons"),
        "attention": out.attention(layer=6, title="Attention, layer 6"),
        **newer_views(lm),
    }


NEWER = ("logit_attribution", "context_mixing", "feature_dashboard")


def newer_views(lm: ew.LanguageModel) -> dict[str, ew.views.EccoView]:
    """Direct logit attribution, context mixing and SAE feature cards, on the agreement example."""
    keys = lm.analyze("The keys to the cabinet are", components=True,
                      attribution=("alti_logit",), contrast=" is")
    texts = [topic[:1500] for _, topic in sorted(topics.items())[:60]]
    sae = ew.demo_sae()
    counts = ew.feature_dashboard(lm, sae, texts, k=1, n_samples=1, n_promoted=1, progress=False).fire_counts
    shown = [int(np.argsort(-counts)[20])]  # one card: a feature firing often, but not one of the densest
    dash = ew.feature_dashboard(lm, sae, texts, features=shown, k=6, n_samples=12, progress=False)
    return {
        "logit_attribution": keys.logit_attribution(position=4, target=" are", foil=" is", unit="head").view(
            title="Which heads and MLPs wrote ' are' over ' is'"),
        "context_mixing": keys.context_mixing("alti_logit").view(title="ALTI-Logit: ' are' - ' is', layer by layer"),
        "feature_dashboard": dash.view(title="Demo SAE features"),
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="only these views (default: all)")
    names = parser.parse_args().names
    views = {k: v for k, v in build_views(names).items() if not names or k in names}
    target = ROOT / "docs" / "img"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"), executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1000, "height": 800}, device_scale_factor=1,
        )
        page = browser.new_page()
        for name, view in views.items():
            for theme, suffix in (("light", ""), ("dark", "_dark")):
                view.theme = theme
                html = Path(tmp) / f"{name}{suffix}.html"
                ew.save_html(view, html)
                page.goto(html.as_uri())
                page.wait_for_function("document.body.dataset.ewReady === '1'", timeout=30_000)
                page.locator(".ew-view").first.screenshot(path=str(target / f"{name}{suffix}.png"))
                print("wrote", target / f"{name}{suffix}.png")
        browser.close()


if __name__ == "__main__":
    main()
