"""Feature dashboards: one card per feature of a sparse dictionary over a dataset (``dash.view()`` of an
``ew.FeatureDashboard``): its top contexts and quantile samples coloured by activation, its activation histogram,
its firing density and the tokens its decoder direction promotes and suppresses; searchable by index or label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import EccoView, check_tokens

TABLE = ("values", "docs", "positions", "tokens", "acts")


class FeatureDashboardView(EccoView):
    """Cards of F features. Token texts come from one table, ``strings`` (display text) and ``raw_strings`` (raw
    pieces, in tooltips and titles); every token array indexes it (-1 = none).

    ``feature_ids`` int (F,) latents; ``labels`` list[str] (F) ("" = none); ``fire_counts`` int (F,) and ``n_tokens``
    (density = fire_counts / n_tokens), ``n_docs``; ``top_values`` float32 (F, k) (0 in empty slots), ``top_docs``
    int (F, k) (-1 = empty slot), ``top_positions`` int (F, k), ``top_tokens`` int (F, k, W) (W = 2 window + 1, the
    context's token in the middle), ``top_acts`` float32 (F, k, W) (the feature's activation at each); the same for
    ``sample_*`` (F, S) (sorted by activation, strongest first; split into 4 quantile bands in a card; S may be 0);
    ``hist`` int (F, B) counts over ``hist_edges`` float32 (B - 1,) (bin 0 below edges[0], the last above
    edges[-1]); ``promoted_tokens`` / ``suppressed_tokens`` int (F, n) with ``promoted_values`` /
    ``suppressed_values`` float32 (F, n) (n may be 0), ``promoted_note``. ``query``: the search box's text;
    ``selected_feature``: int (-1 = none), synced on click / Enter.

    Example::

        >>> from ecco_widgets.views import FeatureDashboardView
        >>> v = FeatureDashboardView(feature_ids=[4], strings=["a", " b"], fire_counts=[1], n_tokens=2,
        ...     top_values=[[1.0]], top_docs=[[0]], top_positions=[[1]], top_tokens=[[[0, 1, -1]]],
        ...     top_acts=[[[0.0, 1.0, 0.0]]], hist=[[0, 1, 0]], hist_edges=[0.5, 2.0])
        >>> v.top_tokens.shape, v.labels
        ((1, 1, 3), [''])
    """

    _bundle = "feature_dashboard"

    feature_ids = Array(ndim=1).tag(sync=True, **array_serialization)
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    strings = traitlets.List(traitlets.Unicode()).tag(sync=True)
    raw_strings = traitlets.List(traitlets.Unicode()).tag(sync=True)
    fire_counts = Array(ndim=1).tag(sync=True, **array_serialization)
    n_tokens = traitlets.Int(0).tag(sync=True)
    n_docs = traitlets.Int(0).tag(sync=True)
    top_values = Array(ndim=2).tag(sync=True, **array_serialization)
    top_docs = Array(ndim=2).tag(sync=True, **array_serialization)
    top_positions = Array(ndim=2).tag(sync=True, **array_serialization)
    top_tokens = Array(ndim=3).tag(sync=True, **array_serialization)
    top_acts = Array(ndim=3).tag(sync=True, **array_serialization)
    sample_values = Array(ndim=2).tag(sync=True, **array_serialization)
    sample_docs = Array(ndim=2).tag(sync=True, **array_serialization)
    sample_positions = Array(ndim=2).tag(sync=True, **array_serialization)
    sample_tokens = Array(ndim=3).tag(sync=True, **array_serialization)
    sample_acts = Array(ndim=3).tag(sync=True, **array_serialization)
    hist = Array(ndim=2).tag(sync=True, **array_serialization)
    hist_edges = Array(ndim=1).tag(sync=True, **array_serialization)
    promoted_tokens = Array(ndim=2).tag(sync=True, **array_serialization)
    promoted_values = Array(ndim=2).tag(sync=True, **array_serialization)
    suppressed_tokens = Array(ndim=2).tag(sync=True, **array_serialization)
    suppressed_values = Array(ndim=2).tag(sync=True, **array_serialization)
    promoted_note = traitlets.Unicode("").tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    selected_feature = traitlets.Int(-1).tag(sync=True)

    def __init__(self, *, feature_ids: Any, strings: Sequence[str], fire_counts: Any, n_tokens: int,
                 top_values: Any, top_docs: Any, top_positions: Any, top_tokens: Any, top_acts: Any, hist: Any,
                 hist_edges: Any, labels: Sequence[str] | None = None, raw_strings: Sequence[str] | None = None,
                 n_docs: int = 0, sample: dict[str, Any] | None = None, promoted: dict[str, Any] | None = None,
                 promoted_note: str = "", query: str = "", selected_feature: int = -1, **kwargs: Any) -> None:
        ids = as_int_array(feature_ids, "feature_ids").astype(np.int64)
        n_f = len(ids)
        texts = check_tokens(strings, "strings", allow_empty=True)
        raws = texts if raw_strings is None else check_tokens(raw_strings, "raw_strings", allow_empty=True)
        names = [""] * n_f if labels is None else check_tokens(labels, "labels", allow_empty=True)
        if len(raws) != len(texts) or len(names) != n_f:
            raise ViewValueError(f"raw_strings: {len(raws)} for {len(texts)} strings; labels: {len(names)} for "
                                 f"{n_f} features")
        top = self._table("top", (top_values, top_docs, top_positions, top_tokens, top_acts), n_f, len(texts))
        width = top["top_tokens"].shape[2]
        sample = self._table("sample", tuple((sample or {}).get(n) for n in TABLE), n_f, len(texts), width)
        logits = {}
        for name in ("promoted", "suppressed"):
            given = (promoted or {}).get(name)
            tokens = as_int_array(given[0], f"{name}_tokens") if given is not None else np.zeros((n_f, 0), np.int64)
            values = as_float_array(given[1], f"{name}_values").astype(np.float32) if given is not None else \
                np.zeros((n_f, 0), np.float32)
            if tokens.shape != values.shape or tokens.ndim != 2 or tokens.shape[0] != n_f:
                raise ViewValueError(f"{name}: tokens {tokens.shape} and values {values.shape} must be (F={n_f}, n)")
            self._check_index(tokens, f"{name}_tokens", len(texts))
            logits.update({f"{name}_tokens": tokens, f"{name}_values": values})
        counts = as_int_array(fire_counts, "fire_counts")
        histogram = as_int_array(hist, "hist")
        edges = as_float_array(hist_edges, "hist_edges").astype(np.float32)
        if counts.shape != (n_f,) or histogram.ndim != 2 or histogram.shape != (n_f, len(edges) + 1):
            raise ViewValueError(f"fire_counts {counts.shape} must be (F={n_f},) and hist {histogram.shape} "
                                 f"(F, len(hist_edges) + 1 = {len(edges) + 1})")
        super().__init__(feature_ids=ids, labels=names, strings=texts, raw_strings=list(raws), fire_counts=counts,
                         n_tokens=int(n_tokens), n_docs=int(n_docs), **top, **sample, hist=histogram,
                         hist_edges=edges, **logits, promoted_note=str(promoted_note), query=str(query),
                         selected_feature=int(selected_feature), **kwargs)

    def _repr_summary(self) -> str:
        k, n_s = self.top_values.shape[1], self.sample_values.shape[1]
        return (f"{len(self.feature_ids)} features, top {k}, {n_s} samples, window "
                f"{(self.top_tokens.shape[2] - 1) // 2}, {len(self.strings)} strings"
                + (f", title={self.title!r}" if self.title else ""))

    @staticmethod
    def _check_index(tokens: np.ndarray, name: str, n_strings: int) -> None:
        if tokens.size and (tokens.min() < -1 or tokens.max() >= n_strings):
            raise ViewValueError(f"{name}: indices into strings must lie in -1..{n_strings - 1}")

    def _table(self, table: str, arrays: tuple, n_f: int, n_strings: int, width: int | None = None) -> dict:
        if table == "sample" and arrays[0] is None:
            return {f"sample_{n}": np.zeros((n_f, 0) + ((width,) if n in ("tokens", "acts") else ()),
                                            np.float32 if n in ("values", "acts") else np.int32) for n in TABLE}
        values = as_float_array(arrays[0], f"{table}_values").astype(np.float32)
        out = {f"{table}_values": values}
        for name, given in zip(TABLE[1:], arrays[1:]):
            convert = as_float_array if name == "acts" else as_int_array
            out[f"{table}_{name}"] = convert(given, f"{table}_{name}")
        lead = values.shape
        if values.ndim != 2 or lead[0] != n_f:
            raise ViewValueError(f"{table}_values: expected (F={n_f}, k), got {lead}")
        for name in TABLE[1:]:
            a = out[f"{table}_{name}"]
            if a.shape[:2] != lead or (name in ("tokens", "acts") and (a.ndim != 3 or (width is not None and
                                                                                       a.shape[2] != width))):
                raise ViewValueError(f"{table}_{name}: shape {a.shape} does not fit {table}_values {lead}")
        self._check_index(out[f"{table}_tokens"], f"{table}_tokens", n_strings)
        out[f"{table}_acts"] = out[f"{table}_acts"].astype(np.float32)
        return out
