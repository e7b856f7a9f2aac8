"""A sparse autoencoder for the bundled model, offline: trained at first use on the English text of Python's
``pydoc_data.topics`` (every tenth topic held out for its metrics) and cached beside the dequantised model.

First use on this project's 2-core CPU: 102 s (load 3; held-out FVU 0.21, CE loss recovered 93.5 %); later calls
load the cached SAELens folder in 0.2 s.

Example: ``sae = ew.demo_sae(); lm.analyze("The keys to the cabinet are", saes=[sae]).explore_features()``.
"""

from __future__ import annotations

from typing import Any

from ..analysis.features import SAE
from ..errors import InputError
from .demo import DEMO_NAME, cache_dir, demo_model

#: The demo dictionary: the residual stream after block 15 (of 30), 4 x 576 latents, 30,000 tokens: small enough
#: for a first use on a CPU.
DEMO_SAE = {"site": "blocks.15.hook_resid_post", "kind": "topk", "width": 2304, "k": 32, "tokens": 30_000,
            "epochs": 2.0}


def demo_texts() -> tuple[list[str], list[str]]:
    """(training texts, held-out texts): the topics of ``pydoc_data.topics`` in sorted order, every tenth held out."""
    from pydoc_data.topics import topics

    keys = sorted(topics)
    return ([topics[k] for i, k in enumerate(keys) if i % 10], [topics[k] for i, k in enumerate(keys) if i % 10 == 0])


def demo_sae(lm: Any = None, progress: bool | None = None, held_out: int = 8, **overrides: Any) -> SAE:
    """The bundled model's demo SAE (``DEMO_SAE``; ``overrides`` change its settings and so its cache folder),
    trained on first use with progress bars, then loaded from the cache ($ECCO_WIDGETS_CACHE or the user cache).
    held_out: how many held-out topics its metrics (cfg.json's metadata "evaluation") are measured on."""
    settings = {**DEMO_SAE, **overrides}
    lm = demo_model() if lm is None else lm
    if getattr(lm, "name", None) != DEMO_NAME:
        raise InputError(f"demo_sae() is the bundled model's dictionary; {lm!r} is another model. Train one for it "
                         "with ew.SAE.fit(lm, texts, site, out=...).")
    train, held = demo_texts()
    name = f"smollm2-sae-{settings['site']}-{settings['kind']}-{settings['width']}-k{settings['k']}-" \
           f"{settings['tokens']}-e{settings['epochs']:g}"
    site = settings.pop("site")
    return SAE.fit(lm, train, site, out=cache_dir() / "saes" / name, eval_texts=held[:held_out], progress=progress,
                   **settings)
