"""Take the screenshots of the README and the docs: render every view from the bundled model, export, shoot each.

Each view is shot in the light theme (docs/img/<view>.png, in the README) and the dark one (<view>_dark.png).

Run: .venv/bin/python tools/screenshots.py   (needs Debian's chromium and playwright; writes docs/img/*.png)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import ecco_widgets as ew

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.chromium import CHROMIUM_ARGS, chromium_executable  # noqa: E402


def build_views() -> dict[str, ew.views.EccoView]:
    lm = ew.demo_model()
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
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    views = build_views()
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
