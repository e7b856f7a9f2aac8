"""How the chosen token's context was mixed, layer by layer: a context-mixing method's per-layer and rolled-out
matrices (value zeroing, ALTI-Logit, rollout) as a layers x source-tokens heat map under the token row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array, check_finite
from .base import TokenView, check_choice, check_labels

MODES = ("layer", "rolled")
#: the most float32 values one (n_layers, n_targets, n_tokens) block may hold (16 MiB): above it the view refuses
MAX_VALUES = 4_000_000


def check_block(value: Any, name: str, shape: tuple[int, int, int]) -> np.ndarray:
    """float32 (n_layers, n_targets, n_tokens), finite, of ``shape``.

    >>> check_block([[[0.5, 0.5]]], "layers", (1, 1, 2)).dtype.name
    'float32'
    """
    arr = as_float_array(value, name).astype(np.float32)
    if arr.shape != shape:
        raise ViewValueError(f"{name}: expected shape {shape} (n_layers, n_targets, n_tokens), got {arr.shape}")
    check_finite(arr, name)
    return arr


class ContextMixingView(TokenView):
    """A layers x source-tokens map of how each explained token's context was mixed.

    ``targets`` int (n_targets,): the explained positions; ``layers`` / ``rolled`` float32 (n_layers, n_targets,
    n_tokens): each layer's own matrix at the row predicting each target, and the same traced to the input tokens
    (``ContextMixing.layers`` / ``.rolled``); ``score`` float32 (n_targets, n_tokens): what colours the token row
    (the method's score, ``ContextMixing.score``). ``selected_token``: the target shown (-1 = the last);
    ``mode``: "layer" or "rolled"; ``selected_cell``: [] or [layer, source].

    >>> import numpy as np
    >>> v = ContextMixingView(["a", "b", "c"], [2], np.full((2, 1, 3), 0.5), np.full((2, 1, 3), 0.5),
    ...                       method="rollout")
    >>> v.layers.shape, v.score.shape, v.mode
    ((2, 1, 3), (1, 3), 'layer')
    """

    _bundle = "context_mixing"

    method = traitlets.Unicode("").tag(sync=True)
    targets = Array(ndim=1).tag(sync=True, **array_serialization)
    layers = Array(ndim=3).tag(sync=True, **array_serialization)
    rolled = Array(ndim=3).tag(sync=True, **array_serialization)
    score = Array(ndim=2).tag(sync=True, **array_serialization)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_token = traitlets.Int(-1).tag(sync=True)
    mode = traitlets.Unicode("layer").tag(sync=True)
    selected_cell = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, tokens: Sequence[str], targets: Any, layers: Any, rolled: Any, *, score: Any = None,
                 method: str = "", raw_tokens: Sequence[str] | None = None, n_input_tokens: int | None = None,
                 layer_labels: Sequence[str] | None = None, selected_token: int = -1, mode: str = "layer",
                 **kwargs: Any) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        t = as_int_array(targets, "targets").astype(np.int32).reshape(-1)
        if not t.size:
            raise ViewValueError("targets: no explained token; analyze with attribution=[method] first")
        if t.min() < 1 or t.max() >= n or len(set(t.tolist())) != len(t):
            raise ViewValueError(f"targets: positions must be distinct, in 1..{n - 1} (a target has a token before "
                                 f"it), got {t.tolist()}")
        shape = np.shape(layers)
        if len(shape) != 3:
            raise ViewValueError(f"layers: expected (n_layers, n_targets, n_tokens), got shape {shape}")
        if int(np.prod(shape)) > MAX_VALUES:
            raise ViewValueError(f"layers: {int(np.prod(shape)):,} values (n_layers x n_targets x n_tokens = {shape}) "
                                 f"is over the view's {MAX_VALUES:,}: explain fewer tokens (targets=...) or a "
                                 f"shorter text")
        full = (shape[0], len(t), n)
        lay, rol = check_block(layers, "layers", full), check_block(rolled, "rolled", full)
        sc = rol[-1] if score is None else as_float_array(score, "score").astype(np.float32)
        if sc.shape != full[1:]:
            raise ViewValueError(f"score: expected shape {full[1:]} (n_targets, n_tokens), got {sc.shape}")
        check_finite(sc, "score")
        labels = check_labels(layer_labels, full[0], "layer_labels", "{}")
        super().__init__(**tk, method=str(method), targets=t, layers=lay, rolled=rol, score=sc,
                         layer_labels=labels, selected_token=self._valid_token(selected_token, t),
                         mode=check_choice(mode, MODES, "mode"), **kwargs)

    @staticmethod
    def _valid_token(value: Any, targets: np.ndarray) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ViewValueError(f"selected_token: expected an int position, got {value!r}")
        if value != -1 and int(value) not in targets.tolist():
            raise ViewValueError(f"selected_token: {value} is not an explained position; explained: "
                                 f"{targets.tolist()} (-1 = the last)")
        return int(value)

    @traitlets.validate("selected_token")
    def _check_selected(self, proposal: Any) -> int:
        return self._valid_token(proposal["value"], self.targets) if self.targets.size else proposal["value"]

    @traitlets.validate("mode")
    def _check_mode(self, proposal: Any) -> str:
        return check_choice(proposal["value"], MODES, "mode")

    @traitlets.validate("selected_cell")
    def _check_cell(self, proposal: Any) -> list[int]:
        cell = list(proposal["value"])
        if cell and (len(cell) != 2 or not 0 <= cell[0] < self.layers.shape[0]
                     or not 0 <= cell[1] < self.layers.shape[2]):
            raise ViewValueError(f"selected_cell: expected [] or [layer, source] inside "
                                 f"{self.layers.shape[0]} layers x {self.layers.shape[2]} tokens, got {cell}")
        return cell

    def _check(self) -> None:
        self._check_tokens()
        full = (self.layers.shape[0], len(self.targets), len(self.tokens))
        check_block(self.layers, "layers", full), check_block(self.rolled, "rolled", full)
        check_labels(self.layer_labels, full[0], "layer_labels", "{}")
        check_choice(self.mode, MODES, "mode")
        self._valid_token(self.selected_token, self.targets)
