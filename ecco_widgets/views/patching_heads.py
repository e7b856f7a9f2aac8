"""Head-level activation patching: layers x heads at one patched position (a position selector for the others),
how much of the clean answer restoring each head's output brings back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array
from .base import check_choice, check_labels, check_tokens, check_topk, topk_traits
from .patching_grid import EFFECTS, PatchingGrid


class HeadPatchingGrid(PatchingGrid):
    """The effect of restoring one attention head's output of the clean run in the corrupted run.

    ``effect[l, h, j]`` (float, shape ``(n_layers, n_heads, n_positions)``) is the normalised logit difference
    ``answer - foil`` (0 = the corrupted run's, 1 = the clean run's) when head ``h`` of layer ``l`` is restored at
    token ``positions[j]`` of the prompt pair (``clean_tokens`` / ``corrupted_tokens``, every token of the pair);
    drawn as a layers x heads grid at ``selected_position`` (an index into ``positions``; the last by default, a
    selector in the browser), on a diverging scale centred on 0. ``attribution_effect`` / ``agreement`` / ``shown``
    as in :class:`PatchingGrid`. ``topk_*`` (``(n_layers, n_heads, n_positions, k)``): the patched run's top-k at the
    answer position, listed when a cell is clicked (``selected_cell``: ``[layer, head]``).

    Example::

        >>> from ecco_widgets.views import HeadPatchingGrid
        >>> g = HeadPatchingGrid(["The", " cat", " is"], ["The", " dog", " is"], np.zeros((2, 4, 1)), positions=[2])
        >>> g.effect.shape, g.selected_position, g.head_labels
        ((2, 4, 1), 0, ['h0', 'h1', 'h2', 'h3'])
    """

    _bundle = "patching_heads"

    effect = Array(ndim=3).tag(sync=True, **array_serialization)
    attribution_effect = Array(ndim=3).tag(sync=True, **array_serialization)
    topk_vocab, topk_index, topk_probs = topk_traits(4)
    positions = traitlets.List(traitlets.Int()).tag(sync=True)
    head_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_position = traitlets.Int(0).tag(sync=True)

    def __init__(self, clean_tokens: Sequence[str], corrupted_tokens: Sequence[str], effect: Any, *,
                 positions: Sequence[int] | None = None, head_labels: Sequence[str] | None = None,
                 selected_position: int | None = None, clean_raw_tokens: Sequence[str] | None = None,
                 corrupted_raw_tokens: Sequence[str] | None = None, layer_labels: Sequence[str] | None = None,
                 effect_method: str = "exact", attribution_effect: Any = None,
                 agreement: dict[str, float] | None = None, shown: str | None = None,
                 topk_vocab: Sequence[str] | None = None, topk_index: Any = None, topk_probs: Any = None,
                 reference_topk_index: Any = None, reference_topk_probs: Any = None,
                 selected_cell: Sequence[int] = (), points: str = "head", **kwargs: Any) -> None:
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
        e = self._effect3(effect, "effect")
        cols = self._valid_positions(positions, e.shape[2], len(clean))
        attr = np.zeros((0, 0, 0), np.float32) if attribution_effect is None else self._effect3(
            attribution_effect, "attribution_effect")
        if attr.size and attr.shape != e.shape:
            raise ViewValueError(f"attribution_effect: expected shape {e.shape} like effect, got {attr.shape}")
        check_choice(effect_method, EFFECTS, "effect_method")
        check_choice(points, ("head",), "points")
        shown = effect_method if shown is None else shown
        self._valid_shown(shown, effect_method, attr)
        topk = check_topk(topk_vocab, topk_index, topk_probs, e.shape)
        ref = self._reference(reference_topk_index, reference_topk_probs, topk)
        chosen = e.shape[2] - 1 if selected_position is None else self._valid_position(selected_position, e.shape[2])
        super(PatchingGrid, self).__init__(  # EccoView's: PatchingGrid's checks are for layers x positions
            clean_tokens=clean, corrupted_tokens=corrupted, clean_raw_tokens=raws[0], corrupted_raw_tokens=raws[1],
            effect=e, attribution_effect=attr, effect_method=effect_method, **self._valid_agreement(agreement),
            shown=shown, layer_labels=check_labels(layer_labels, e.shape[0], "layer_labels", "{}"),
            head_labels=check_labels(head_labels, e.shape[1], "head_labels", "h{}"), positions=cols,
            selected_position=chosen, **topk, **ref, selected_cell=self._valid_cell(list(selected_cell), e.shape),
            points=points, **kwargs)

    @staticmethod
    def _effect3(value: Any, name: str) -> np.ndarray:
        arr = as_float_array(value, name).astype(np.float32)
        if arr.ndim != 3 or not arr.size:
            raise ViewValueError(f"{name}: expected shape (n_layers, n_heads, n_positions), got {tuple(arr.shape)}")
        return arr

    @staticmethod
    def _valid_positions(positions: Sequence[int] | None, n_columns: int, n_tokens: int) -> list[int]:
        """The token position of each column: by default the last ``n_columns`` tokens."""
        cols = list(range(n_tokens - n_columns, n_tokens)) if positions is None else [int(p) for p in positions]
        if len(cols) != n_columns or any(not 0 <= p < n_tokens for p in cols):
            raise ViewValueError(f"positions: expected {n_columns} token positions (one per column of effect) within "
                                 f"the {n_tokens} tokens, got {list(positions) if positions is not None else None}")
        return cols

    @staticmethod
    def _valid_position(value: Any, n_columns: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < n_columns:
            raise ViewValueError(f"selected_position: expected a column index from 0 to {n_columns - 1}, got "
                                 f"{value!r}")
        return int(value)

    @staticmethod
    def _valid_cell(cell: list[Any], shape: tuple[int, ...]) -> list[int]:
        if not cell:
            return []
        if len(cell) != 2 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in cell):
            raise ViewValueError(f"selected_cell: expected [] or [layer, head], got {cell!r}")
        layer, head = (int(c) for c in cell)
        if not (0 <= layer < shape[0] and 0 <= head < shape[1]):
            raise ViewValueError(f"selected_cell: [{layer}, {head}] is outside the grid ({shape[0]} layers x "
                                 f"{shape[1]} heads)")
        return [layer, head]

    @traitlets.validate("selected_position")
    def _check_position(self, proposal: Any) -> int:
        return self._valid_position(proposal["value"], self.effect.shape[2])

    def _check(self) -> None:
        n = len(self.clean_tokens)
        if len(self.corrupted_tokens) != n:
            raise ViewValueError("clean_tokens and corrupted_tokens must have as many tokens")
        e = self._effect3(self.effect, "effect")
        if self.attribution_effect.size and self.attribution_effect.shape != e.shape:
            raise ViewValueError("attribution_effect: expected the shape of effect")
        self._valid_positions(self.positions, e.shape[2], n)
        check_labels(self.layer_labels, e.shape[0], "layer_labels", "{}")
        check_labels(self.head_labels, e.shape[1], "head_labels", "h{}")
        if self.topk_index.size:
            check_topk(self.topk_vocab, self.topk_index, self.topk_probs, e.shape)
        self._valid_cell(list(self.selected_cell), e.shape)
        self._valid_position(self.selected_position, e.shape[2])
