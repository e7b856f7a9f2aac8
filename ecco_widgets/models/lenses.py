"""Compare lenses on one text: the logit lens and tuned lenses, analysed alike and shown side by side.

Example: ``ew.compare_lenses(lm, "The keys to the cabinet are", lenses={"logit": None, "tuned": tl})``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..capture import capture
from ..errors import InputError
from ..results import Output
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
    return lens_comparison(lens_outputs(lm, text, lenses, **analysis), metric=metric, **options)


def lens_outputs(lm: LanguageModel, text: str, lenses: dict[str, Any], lens_topk: int = 10,
                 lens_points: str = "blocks", progress: bool | None = None) -> dict[str, Output]:
    """{name: Output} of ``text`` decoded through each lens, from ONE hooked forward pass: each the same as
    ``lm.analyze(text, lens=lens, keep_hidden_states=False)``. Every lens is checked before the forward pass."""
    tuned = {name: lm.check_lens(lens, lens_points) for name, lens in lenses.items()}
    lm.check_options(lens_topk, "float32", lm.vocab_size)
    ids = lm.encode(text)
    lm.check_length(len(ids), "The text")
    ids = lm.check_ids(ids)
    sublayers = lens_points == "sublayers"
    lm.check_capture_memory(len(ids), sublayers, attention=False)
    with lm.lock:
        captured = capture(lm.spec, torch.tensor([ids], device=lm.device), activation_layers=[],
                           activation_dtype="float32", attention=False, progress=progress, sublayers=sublayers)
        return {name: lm.lens_output(ids, len(ids), captured, [], lens, lens_topk, lens_points, False, progress)
                for name, lens in tuned.items()}
