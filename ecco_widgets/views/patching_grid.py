"""Activation patching grid: layers x positions, how much of the clean answer each restored point brings back."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import EccoView, check_choice, check_labels, check_tokens, check_topk, topk_traits

EFFECTS = ("exact", "attribution")
POINTS = ("resid", "attn", "mlp")


class PatchingGrid(EccoView):
    """The effect of restoring each (layer, position) of the clean run in the corrupted run.

    ``effect[l, p]`` (float, shape ``(n_layers, n_positions)``, one column per token of the prompt pair) is the
    normalised logit difference ``answer - foil``: 0 = the corrupted run's, 1 = the clean run's; drawn on a diverging
    scale centred on 0. ``effect_method`` says what it holds ("exact" patching or the "attribution" estimate);
    ``attribution_effect`` (same shape, optional) adds the estimate next to exact effects, with ``agreement``
    (``{"pearson": r, "sign_agreement": share, "signed_cells": n}``, kept as the traits of those names), and ``shown`` picks which one colours the grid (a switcher in the
    browser too). The clean and corrupted tokens are drawn on top, aligned with the columns, differing ones marked.
    ``topk_*`` (``(n_layers, n_positions, k)``): the patched run's top-k at the answer position, listed when a cell
    is clicked (``selected_cell``), next to the clean and corrupted runs' (``reference_topk_*``, ``(2, k)``).

    Example::

        >>> from ecco_widgets.views import PatchingGrid
        >>> g = PatchingGrid(["The", " cat", " is"], ["The", " dog", " is"], [[0.0, 0.9, 0.1], [0.0, 0.2, 1.0]],
        ...                  answer=" meowing", foil=" barking")
        >>> g.effect.shape, g.layer_labels, g.shown
        ((2, 3), ['0', '1'], 'exact')
    """

    _bundle = "patching_grid"

    clean_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    corrupted_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    clean_raw_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    corrupted_raw_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    effect = Array(ndim=2).tag(sync=True, **array_serialization)
    effect_method = traitlets.Unicode("exact").tag(sync=True)
    attribution_effect = Array(ndim=2).tag(sync=True, **array_serialization)
    pearson = traitlets.Float(None, allow_none=True).tag(sync=True)
    sign_agreement = traitlets.Float(None, allow_none=True).tag(sync=True)
    signed_cells = traitlets.Int(0).tag(sync=True)
    shown = traitlets.Unicode("exact").tag(sync=True)
    answer = traitlets.Unicode("").tag(sync=True)
    foil = traitlets.Unicode("").tag(sync=True)
    points = traitlets.Unicode("resid").tag(sync=True)
    # the runs' logit differences answer - foil; None (null): not given, and the view does not show them
    clean_logit_diff = traitlets.Float(None, allow_none=True).tag(sync=True)
    corrupted_logit_diff = traitlets.Float(None, allow_none=True).tag(sync=True)
    topk_vocab, topk_index, topk_probs = topk_traits(3)
    reference_topk_index = Array(ndim=2).tag(sync=True, **array_serialization)
    reference_topk_probs = Array(ndim=2).tag(sync=True, **array_serialization)
    selected_cell = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(
        self,
        clean_tokens: Sequence[str],
        corrupted_tokens: Sequence[str],
        effect: Any,
        *,
        clean_raw_tokens: Sequence[str] | None = None,
        corrupted_raw_tokens: Sequence[str] | None = None,
        layer_labels: Sequence[str] | None = None,
        effect_method: str = "exact",
        attribution_effect: Any = None,
        agreement: dict[str, float] | None = None,
        shown: str | None = None,
        topk_vocab: Sequence[str] | None = None,
        topk_index: Any = None,
        topk_probs: Any = None,
        reference_topk_index: Any = None,
        reference_topk_probs: Any = None,
        selected_cell: Sequence[int] = (),
        points: str = "resid",
        **kwargs: Any,
    ) -> None:
        clean = check_tokens(clean_tokens, "clean_tokens")
        corrupted = check_tokens(corrupted_tokens, "corrupted_tokens")
        if len(clean) != len(corrupted):
            raise ViewValueError(f"clean_tokens has {len(clean)} tokens and corrupted_tokens {len(corrupted)}: a "
                                 "prompt pair must have as many tokens, position for position")
        raws = [check_tokens(r, n) if r is not None else list(t) for r, t, n in
                ((clean_raw_tokens, clean, "clean_raw_tokens"), (corrupted_raw_tokens, corrupted,
                                                                 "corrupted_raw_tokens"))]
        if any(len(r) != len(clean) for r in raws):
            raise ViewValueError(f"clean_raw_tokens / corrupted_raw_tokens: expected {len(clean)} entries each")
        e = self._effect(effect, "effect", len(clean))
        attr = np.zeros((0, 0), np.float32) if attribution_effect is None else self._effect(
            attribution_effect, "attribution_effect", len(clean))
        if attr.size and attr.shape != e.shape:
            raise ViewValueError(f"attribution_effect: expected shape {e.shape} like effect, got {attr.shape}")
        check_choice(effect_method, EFFECTS, "effect_method")
        check_choice(points, POINTS, "points")
        shown = effect_method if shown is None else shown
        self._valid_shown(shown, effect_method, attr)
        labels = check_labels(layer_labels, e.shape[0], "layer_labels", "{}")
        topk = check_topk(topk_vocab, topk_index, topk_probs, e.shape)
        ref = self._reference(reference_topk_index, reference_topk_probs, topk)
        sel = self._valid_cell(list(selected_cell), e.shape)
        super().__init__(clean_tokens=clean, corrupted_tokens=corrupted, clean_raw_tokens=raws[0],
                         corrupted_raw_tokens=raws[1], effect=e, attribution_effect=attr, effect_method=effect_method,
                         **self._valid_agreement(agreement), shown=shown, layer_labels=labels, **topk, **ref,
                         selected_cell=sel, points=points, **kwargs)

    @staticmethod
    def _effect(value: Any, name: str, n: int) -> np.ndarray:
        arr = as_float_array(value, name).astype(np.float32)
        if arr.ndim != 2 or arr.shape[1] != n or arr.shape[0] < 1:
            raise ViewValueError(f"{name}: expected shape (n_layers, n_positions = {n}), one column per token of the "
                                 f"prompt pair, got {tuple(arr.shape)}")
        return arr

    @staticmethod
    def _valid_shown(shown: Any, method: str, attribution: np.ndarray) -> str:
        check_choice(shown, EFFECTS, "shown")
        if shown != method and not attribution.size:
            raise ViewValueError(f"shown: {shown!r} needs attribution_effect=..., which was not given")
        return shown

    @staticmethod
    def _valid_agreement(value: Any) -> dict[str, Any]:
        """The traits pearson, sign_agreement (None where absent or NaN, e.g. Pearson's r of a constant grid: JSON
        has no NaN) and signed_cells of an agreement dict."""
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise ViewValueError(f"agreement: expected a dict like {{'pearson': 0.9, 'sign_agreement': 0.8}}, got "
                                 f"{type(value).__name__}")

        def number(name: str) -> float | None:
            v = value.get(name)
            return float(v) if isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v)) \
                else None
        return {"pearson": number("pearson"), "sign_agreement": number("sign_agreement"),
                "signed_cells": int(number("signed_cells") or 0)}

    @staticmethod
    def _reference(index: Any, probs: Any, topk: dict[str, Any]) -> dict[str, np.ndarray]:
        if index is None and probs is None:
            return {"reference_topk_index": np.zeros((0, 0), np.int32),
                    "reference_topk_probs": np.zeros((0, 0), np.float32)}
        if index is None or probs is None or not topk["topk_index"].size:
            raise ViewValueError("reference_topk_index and reference_topk_probs go together, with topk_*")
        idx = as_int_array(index, "reference_topk_index").astype(np.int32)
        p = as_float_array(probs, "reference_topk_probs").astype(np.float32)
        if idx.ndim != 2 or idx.shape[0] != 2 or p.shape != idx.shape:
            raise ViewValueError(f"reference_topk_index / _probs: expected shape (2, k) (clean, corrupted), got "
                                 f"{idx.shape} and {p.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= len(topk["topk_vocab"])):
            raise ViewValueError("reference_topk_index: values must index topk_vocab")
        return {"reference_topk_index": idx, "reference_topk_probs": p}

    @staticmethod
    def _valid_cell(cell: list[Any], shape: tuple[int, ...]) -> list[int]:
        if not cell:
            return []
        if len(cell) != 2 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in cell):
            raise ViewValueError(f"selected_cell: expected [] or [layer, position], got {cell!r}")
        layer, position = (int(c) for c in cell)
        if not (0 <= layer < shape[0] and 0 <= position < shape[1]):
            raise ViewValueError(f"selected_cell: [{layer}, {position}] is outside the grid ({shape[0]} layers x "
                                 f"{shape[1]} positions)")
        return [layer, position]

    @traitlets.validate("shown")
    def _check_shown(self, proposal: Any) -> str:
        return self._valid_shown(proposal["value"], self.effect_method, self.attribution_effect)

    @traitlets.validate("selected_cell")
    def _check_selected(self, proposal: Any) -> list[int]:
        return self._valid_cell(list(proposal["value"]), self.effect.shape)

    def _check(self) -> None:
        n = len(self.clean_tokens)
        if len(self.corrupted_tokens) != n:
            raise ViewValueError("clean_tokens and corrupted_tokens must have as many tokens")
        self._effect(self.effect, "effect", n)
        if self.attribution_effect.size and self.attribution_effect.shape != self.effect.shape:
            raise ViewValueError("attribution_effect: expected the shape of effect")
        check_labels(self.layer_labels, self.effect.shape[0], "layer_labels", "{}")
        if self.topk_index.size:
            check_topk(self.topk_vocab, self.topk_index, self.topk_probs, self.effect.shape)
        self._valid_cell(list(self.selected_cell), self.effect.shape)
