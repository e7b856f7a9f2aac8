"""Direct logit attribution: layers x heads (+ each layer's MLP) on a diverging scale, with the per-layer totals, the
logit read after each layer and each head's promoted tokens and attention pattern."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import EccoView, check_index, check_labels, check_shape, check_tokens


def _empty(ndim: int, dtype: Any = np.float32) -> np.ndarray:
    return np.zeros((0,) * ndim, dtype)


class LogitAttributionView(EccoView):
    """The logit (difference) ``target`` (− ``foil``) at ``position`` split over the model's components.

    ``head_values`` float32 (n_layers, n_heads): each head's direct share; ``mlp_values`` (n_layers,): each MLP's
    (its bias apart); ``attn_totals`` / ``mlp_totals`` (n_layers,): each sublayer's share with its bias terms (the
    stacked bar per layer); ``accumulated`` (n_layers + 1,): the logit read after the embedding and after each block;
    ``term_labels`` / ``term_values``: the embedding and the bias terms. ``logit``: the model's own (pre-cap) logit
    (difference), ``error`` |sum − logit|, ``note`` (e.g. the soft cap). Optional: ``promoted_vocab`` with
    ``promoted_index`` int (n_layers, n_heads + 1, k) (last column: the MLP; -1 = none) and ``promoted_values``
    float32 (same shape): each component's most promoted tokens (its output through the frozen final norm and the
    unembedding); ``attention`` float32 (n_layers, n_heads, n_tokens): each head's attention from ``position`` over
    ``tokens``. ``selected_cell``: [] or [layer, column] (column n_heads = the MLP), synced on click / Enter.

    Example::

        >>> from ecco_widgets.views import LogitAttributionView
        >>> v = LogitAttributionView([[0.5, -0.25], [1.0, 0.0]], [0.1, -0.2], target=" Paris")
        >>> v.head_values.shape, [round(float(a), 2) for a in v.accumulated], v.layer_labels
        ((2, 2), [0.0, 0.35, 1.15], ['0', '1'])
    """

    _bundle = "logit_attribution"

    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    raw_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    position = traitlets.Int(-1).tag(sync=True)
    layer_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_values = Array(ndim=2).tag(sync=True, **array_serialization)
    mlp_values = Array(ndim=1).tag(sync=True, **array_serialization)
    attn_totals = Array(ndim=1).tag(sync=True, **array_serialization)
    mlp_totals = Array(ndim=1).tag(sync=True, **array_serialization)
    accumulated = Array(ndim=1).tag(sync=True, **array_serialization)
    term_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    term_values = Array(ndim=1).tag(sync=True, **array_serialization)
    target = traitlets.Unicode("").tag(sync=True)
    foil = traitlets.Unicode("").tag(sync=True)
    logit = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Float(0.0).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    promoted_vocab = traitlets.List(traitlets.Unicode()).tag(sync=True)
    promoted_index = Array(ndim=3).tag(sync=True, **array_serialization)
    promoted_values = Array(ndim=3).tag(sync=True, **array_serialization)
    attention = Array(ndim=3).tag(sync=True, **array_serialization)
    selected_cell = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, head_values: Any, mlp_values: Any, *, attn_totals: Any = None, mlp_totals: Any = None,
                 accumulated: Any = None, term_labels: Sequence[str] = (), term_values: Any = None,
                 layer_labels: Sequence[str] | None = None, tokens: Sequence[str] = (),
                 raw_tokens: Sequence[str] | None = None, position: int = -1, promoted_vocab: Sequence[str] = (),
                 promoted_index: Any = None, promoted_values: Any = None, attention: Any = None,
                 selected_cell: Sequence[int] = (), logit: float | None = None, **kwargs: Any) -> None:
        heads = as_float_array(head_values, "head_values").astype(np.float32)
        if heads.ndim != 2 or not heads.size:
            raise ViewValueError(f"head_values: expected shape (n_layers, n_heads), got {tuple(heads.shape)}")
        n_layers, n_heads = heads.shape
        mlp = self._vector(mlp_values, "mlp_values", n_layers)
        attn_t = heads.sum(1) if attn_totals is None else self._vector(attn_totals, "attn_totals", n_layers)
        mlp_t = mlp if mlp_totals is None else self._vector(mlp_totals, "mlp_totals", n_layers)
        terms = check_tokens(term_labels, "term_labels", allow_empty=True)
        term_v = np.zeros(len(terms), np.float32) if term_values is None else self._vector(
            term_values, "term_values", len(terms))
        acc = (np.concatenate([[0.0], np.cumsum(attn_t + mlp_t, dtype=np.float64)]) if accumulated is None
               else self._vector(accumulated, "accumulated", n_layers + 1)).astype(np.float32)
        toks = check_tokens(tokens, "tokens", allow_empty=True)
        raw = toks if raw_tokens is None else check_tokens(raw_tokens, "raw_tokens", allow_empty=True)
        if len(raw) != len(toks):
            raise ViewValueError(f"raw_tokens: expected {len(toks)} entries like tokens, got {len(raw)}")
        if toks:
            check_index(position, len(toks), "position")
        vocab = check_tokens(promoted_vocab, "promoted_vocab", allow_empty=True)
        index, values = self._promoted(promoted_index, promoted_values, (n_layers, n_heads + 1), len(vocab))
        att = _empty(3) if attention is None else as_float_array(attention, "attention").astype(np.float32)
        if att.size:
            check_shape(att, (n_layers, n_heads, len(toks)), "attention", "(n_layers, n_heads, n_tokens)")
        sel = [int(v) for v in selected_cell]
        if sel and (len(sel) != 2 or not (0 <= sel[0] < n_layers and 0 <= sel[1] <= n_heads)):
            raise ViewValueError(f"selected_cell: expected [] or [layer, column] within ({n_layers}, {n_heads + 1}), "
                                 f"got {sel}")
        super().__init__(head_values=heads, mlp_values=mlp, attn_totals=attn_t, mlp_totals=mlp_t, accumulated=acc,
                         term_labels=terms, term_values=term_v, tokens=toks, raw_tokens=raw, position=int(position),
                         layer_labels=check_labels(layer_labels, n_layers, "layer_labels", "{}"),
                         promoted_vocab=vocab, promoted_index=index, promoted_values=values, attention=att,
                         selected_cell=sel, logit=float(acc[-1] if logit is None else logit), **kwargs)

    @staticmethod
    def _vector(value: Any, name: str, n: int) -> np.ndarray:
        arr = as_float_array(value, name).astype(np.float32)
        check_shape(arr, (n,), name)
        return arr

    @staticmethod
    def _promoted(index: Any, values: Any, lead: tuple[int, int], n_vocab: int) -> tuple[np.ndarray, np.ndarray]:
        if index is None and values is None:
            return _empty(3, np.int32), _empty(3)
        if index is None or values is None:
            raise ViewValueError("promoted_index and promoted_values go together: give both (or neither)")
        idx = as_int_array(index, "promoted_index")
        val = np.nan_to_num(np.asarray(values, np.float32), nan=0.0)
        check_shape(idx, (*lead, None), "promoted_index", "(n_layers, n_heads + 1, k)")
        check_shape(val, idx.shape, "promoted_values", "like promoted_index")
        if idx.size and (idx.min() < -1 or idx.max() >= n_vocab):
            raise ViewValueError(f"promoted_index: entries must be -1 (none) or 0..{n_vocab - 1} (promoted_vocab)")
        return idx, as_float_array(val, "promoted_values").astype(np.float32)
