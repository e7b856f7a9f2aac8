"""Compare lenses on one text: the logit lens and tuned lenses, analysed alike and shown side by side.

Example: ``ew.compare_lenses(lm, "The keys to the cabinet are", lenses={"logit": None, "tuned": tl})``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..results.lens_comparison import lens_comparison
from .causal_lm import LanguageModel

METRICS = ("rank", "prob", "kl", "entropy")
#: Options that go to lm.analyze; every other keyword goes to the view (title, ...).
ANALYSIS_OPTIONS = ("lens_topk", "lens_points", "progress")


def compare_lenses(lm: LanguageModel, text: str, lenses: dict[str, Any] | None = None, metric: str = "rank",
                   **options: Any):
    """A LensComparison view: one grid per lens over ``text`` (same columns, same colour scale, linked hover) and a
    per-layer summary (mean KL to the last layer, share of rank-1 cells) for each.

    lenses: {name: None (the logit lens) or an ew.TunedLens}; default {"logit": None}. metric: the metric shown
    first ("rank", "prob", "kl", "entropy"). lens_topk, lens_points and progress go to lm.analyze, other keywords
    (title, ...) to the view.
    """
    if not isinstance(lm, LanguageModel):
        raise InputError(f"compare_lenses needs a causal language model (ew.from_pretrained / ew.demo_model), got "
                         f"{type(lm).__name__}.")
    lenses = {"logit": None} if lenses is None else lenses
    if not isinstance(lenses, dict) or not lenses or not all(isinstance(k, str) and k for k in lenses):
        raise InputError("lenses must be a dict {name: None or ew.TunedLens}, e.g. {'logit': None, 'tuned': tl}.")
    if metric not in METRICS:
        raise InputError(f"metric must be one of {', '.join(map(repr, METRICS))}, got {metric!r}.")
    bad = {"lens", "attribution", "activations", "attention"} & set(options)
    if bad:
        raise InputError(f"compare_lenses computes only the lens; drop {', '.join(sorted(bad))} (use lm.analyze "
                         "for the other analyses).")
    analysis = {k: options.pop(k) for k in ANALYSIS_OPTIONS if k in options}
    points = analysis.get("lens_points", "blocks")
    for lens in lenses.values():  # every lens checked before the first forward pass
        lm.check_lens(lens, points)
    outputs = {name: lm.analyze(text, lens=lens, keep_hidden_states=False, **analysis)
               for name, lens in lenses.items()}
    return lens_comparison(outputs, metric=metric, **options)
