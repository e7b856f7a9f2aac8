"""The features of a sparse dictionary (an SAE, a transcoder) over a text: the token row, each token's strongest
features (index, label, activation bar, attribution to a chosen output), and one feature's activation over the text
as the tokens' colour and a sparkline. Sparse on the wire: per-token offsets + indices + values (CSR), never a dense
n_tokens x d_sae array; labels only for the features present."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import TokenView, check_index


def sparse_rows(indices: Any, values: Any, n_tokens: int, name: str, offsets: Any = None,
                order: str = "value") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets int (n_tokens + 1,), indices int (nnz,), values float32 (nnz,)) of per-token sparse rows.

    ``indices`` / ``values``: (n_tokens, k) padded with -1 (an SAEFeatures' form), or flat (nnz,) with ``offsets``.
    Each row is sorted largest first (``order="value"``) or by |value| (``"abs"``); an index twice in a row, an index
    below 0 (outside the padding) or a non-finite value is refused.

    >>> o, i, v = sparse_rows([[3, 1], [2, -1]], [[0.5, 2.0], [1.0, 0.0]], 2, "features")
    >>> o.tolist(), i.tolist(), v.tolist()
    ([0, 2, 3], [1, 3, 2], [2.0, 0.5, 1.0])
    """
    idx = as_int_array(indices, f"{name} indices").astype(np.int64)
    val = as_float_array(values, f"{name} values").astype(np.float32)
    if idx.shape != val.shape:
        raise ViewValueError(f"{name}: indices {tuple(idx.shape)} and values {tuple(val.shape)} differ in shape")
    if offsets is None:
        if idx.ndim != 2 or idx.shape[0] != n_tokens:
            raise ViewValueError(f"{name}: expected indices and values of shape (n_tokens={n_tokens}, k) padded with "
                                 f"-1, got {tuple(idx.shape)}")
        keep = idx >= 0
        counts = keep.sum(1)
        off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        if idx.size and idx.min() < -1:
            raise ViewValueError(f"{name}: indices must be latents (>= 0) or -1 (padding), found {int(idx.min())}")
        idx, val = idx[keep], val[keep]  # row-major: each token's entries stay together, in order
    else:
        off = as_int_array(offsets, f"{name} offsets").astype(np.int64)
        if idx.ndim != 1 or off.shape != (n_tokens + 1,) or off[0] != 0 or off[-1] != idx.size or \
                (np.diff(off) < 0).any():
            raise ViewValueError(f"{name}: offsets must be (n_tokens + 1={n_tokens + 1},), from 0 rising to the "
                                 f"number of entries ({idx.size}); got shape {tuple(off.shape)}")
        if idx.size and idx.min() < 0:
            raise ViewValueError(f"{name}: indices must be latents (>= 0), found {int(idx.min())}")
    out_i, out_v = np.empty_like(idx), np.empty_like(val)
    for t in range(n_tokens):
        a, b = int(off[t]), int(off[t + 1])
        row_i, row_v = idx[a:b], val[a:b]
        if len(np.unique(row_i)) != len(row_i):
            raise ViewValueError(f"{name}: token {t} lists a latent twice ({row_i.tolist()})")
        key = -np.abs(row_v) if order == "abs" else -row_v
        perm = np.argsort(key, kind="stable")
        out_i[a:b], out_v[a:b] = row_i[perm], row_v[perm]
    return off, out_i, out_v


def attribution_rows(attribution: Any, n_tokens: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``attribution`` argument as sparse rows (by |value|): a dict ``{position: (indices, values)}`` (or
    ``{position: {latent: value}}``), or a pair ``(indices, values)`` of (n_tokens, k) arrays padded with -1."""
    if isinstance(attribution, Mapping):
        idx = [[] for _ in range(n_tokens)]
        val = [[] for _ in range(n_tokens)]
        for position, entry in attribution.items():
            p = check_index(position, n_tokens, "attribution position", allow_none=False)
            if isinstance(entry, Mapping):
                entry = (list(entry.keys()), list(entry.values()))
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
                raise ViewValueError(f"attribution[{position}]: expected (indices, values) or {{latent: value}}, got "
                                     f"{type(entry).__name__}")
            i, v = (np.asarray(x).reshape(-1) for x in entry)
            if i.shape != v.shape:
                raise ViewValueError(f"attribution[{position}]: {i.size} indices but {v.size} values")
            idx[p], val[p] = i.tolist(), v.tolist()
        counts = [len(r) for r in idx]
        off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        flat_i = np.array([x for r in idx for x in r], dtype=np.float64)
        flat_v = np.array([x for r in val for x in r], dtype=np.float64)
        return sparse_rows(flat_i, flat_v, n_tokens, "attribution", offsets=off, order="abs")
    if isinstance(attribution, (tuple, list)) and len(attribution) == 2:
        return sparse_rows(attribution[0], attribution[1], n_tokens, "attribution", order="abs")
    raise ViewValueError("attribution: expected {position: (indices, values)} or a pair (indices, values) of "
                         f"(n_tokens, k) arrays padded with -1, got {type(attribution).__name__}")


class FeatureExplorer(TokenView):
    """A dictionary's features over the tokens: hover or select a token to list its strongest features; hover or
    select a feature (click, Enter) to colour the tokens by its activation and draw it as a sparkline.

    ``FeatureExplorer(tokens, indices, values, *, offsets=None, d_sae=None, labels=None, attribution=None,
    attribution_target="", dictionary="", n_top=10, selected_token=-1, selected_feature=-1, raw_tokens=None,
    n_input_tokens=None)``: ``indices`` int / ``values`` float (n_tokens, k) padded with -1 (``out.features[name]``'s
    arrays), or flat (nnz,) with ``offsets`` (n_tokens + 1,). ``labels``: {latent: description} (``sae.labels``); only
    those of the latents shown are sent. ``attribution``: each token's features' effect on one output
    (``attribution_target``, e.g. ``"' Paris'"``): ``{position: (indices, values)}`` or a pair of (n_tokens, k) arrays;
    drawn as a signed bar beside the activation. ``dashboard``: a FeatureDashboard of the same dictionary
    (``ew.feature_dashboard``); the cards of the text's features that it has are sent (only those), and click / Enter
    on a feature opens its card under the list (Escape closes it). Usually built by ``out.explore_features(name)``.

    Example::

        >>> from ecco_widgets.views import FeatureExplorer
        >>> v = FeatureExplorer(["a", "b"], [[3, 1], [2, -1]], [[0.5, 2.0], [1.0, 0.0]], labels={3: "x", 9: "y"})
        >>> v.feature_offsets.tolist(), v.feature_indices.tolist(), v.feature_labels, v.d_sae
        ([0, 2, 3], [1, 3, 2], [{'index': 3, 'description': 'x'}], 4)
    """

    _bundle = "feature_explorer"

    feature_offsets = Array(ndim=1).tag(sync=True, **array_serialization)
    feature_indices = Array(ndim=1).tag(sync=True, **array_serialization)
    feature_values = Array(ndim=1).tag(sync=True, **array_serialization)
    #: [{"index": latent, "description": text}] of the latents shown that have a label (labels.json's records)
    feature_labels = traitlets.List(traitlets.Dict()).tag(sync=True)
    d_sae = traitlets.Int(0).tag(sync=True)
    dictionary = traitlets.Unicode("").tag(sync=True)
    attribution_offsets = Array(ndim=1).tag(sync=True, **array_serialization)
    attribution_indices = Array(ndim=1).tag(sync=True, **array_serialization)
    attribution_values = Array(ndim=1).tag(sync=True, **array_serialization)
    attribution_target = traitlets.Unicode("").tag(sync=True)
    n_top = traitlets.Int(10).tag(sync=True)
    selected_token = traitlets.Int(-1).tag(sync=True)
    selected_feature = traitlets.Int(-1).tag(sync=True)
    #: a dashboard was given: clicking / Enter on a feature opens its card (``card_*``: the FeatureDashboardView's
    #: arrays for the features of this text that the dashboard has, nothing more)
    has_dashboard = traitlets.Bool(False).tag(sync=True)
    card_feature_ids = Array(ndim=1).tag(sync=True, **array_serialization)
    card_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    card_strings = traitlets.List(traitlets.Unicode()).tag(sync=True)
    card_raw_strings = traitlets.List(traitlets.Unicode()).tag(sync=True)
    card_fire_counts = Array(ndim=1).tag(sync=True, **array_serialization)
    card_n_tokens = traitlets.Int(0).tag(sync=True)
    card_top_values = Array(ndim=2).tag(sync=True, **array_serialization)
    card_top_docs = Array(ndim=2).tag(sync=True, **array_serialization)
    card_top_positions = Array(ndim=2).tag(sync=True, **array_serialization)
    card_top_tokens = Array(ndim=3).tag(sync=True, **array_serialization)
    card_top_acts = Array(ndim=3).tag(sync=True, **array_serialization)
    card_sample_values = Array(ndim=2).tag(sync=True, **array_serialization)
    card_sample_docs = Array(ndim=2).tag(sync=True, **array_serialization)
    card_sample_positions = Array(ndim=2).tag(sync=True, **array_serialization)
    card_sample_tokens = Array(ndim=3).tag(sync=True, **array_serialization)
    card_sample_acts = Array(ndim=3).tag(sync=True, **array_serialization)
    card_hist = Array(ndim=2).tag(sync=True, **array_serialization)
    card_hist_edges = Array(ndim=1).tag(sync=True, **array_serialization)
    card_promoted_tokens = Array(ndim=2).tag(sync=True, **array_serialization)
    card_promoted_values = Array(ndim=2).tag(sync=True, **array_serialization)
    card_suppressed_tokens = Array(ndim=2).tag(sync=True, **array_serialization)
    card_suppressed_values = Array(ndim=2).tag(sync=True, **array_serialization)
    card_promoted_note = traitlets.Unicode("").tag(sync=True)

    def __init__(self, tokens: Any, indices: Any, values: Any, *, offsets: Any = None, d_sae: int | None = None,
                 labels: Mapping[int, str] | None = None, attribution: Any = None, attribution_target: str = "",
                 n_top: int = 10, selected_token: int = -1, selected_feature: int = -1, raw_tokens: Any = None,
                 n_input_tokens: int | None = None, dashboard: Any = None, **kwargs: Any) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        off, idx, val = sparse_rows(indices, values, n, "features", offsets=offsets)
        a_off, a_idx, a_val = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)) \
            if attribution is None else attribution_rows(attribution, n)
        top = int(max(idx.max(initial=-1), a_idx.max(initial=-1))) + 1
        if d_sae is None:
            d_sae = top
        if isinstance(d_sae, bool) or not isinstance(d_sae, (int, np.integer)) or d_sae < top:
            raise ViewValueError(f"d_sae: {d_sae!r} is below the largest latent shown + 1 ({top})")
        if isinstance(n_top, bool) or not isinstance(n_top, (int, np.integer)) or n_top < 1:
            raise ViewValueError(f"n_top: expected a positive int (features listed per token), got {n_top!r}")
        shown = set(idx.tolist()) | set(a_idx.tolist())
        sent = []
        for key, text in sorted((labels or {}).items()):
            if not isinstance(text, str):
                raise ViewValueError(f"labels[{key!r}]: expected a str, got {type(text).__name__}")
            if int(key) in shown:
                sent.append({"index": int(key), "description": text})
        cards = _cards(dashboard, set(idx.tolist()), int(d_sae), {int(k): v for k, v in (labels or {}).items()})
        super().__init__(**cards, **tk, feature_offsets=off, feature_indices=idx, feature_values=val,
                         feature_labels=sent,
                         d_sae=int(d_sae), attribution_offsets=a_off, attribution_indices=a_idx,
                         attribution_values=a_val, attribution_target=str(attribution_target), n_top=int(n_top),
                         selected_token=check_index(selected_token, n, "selected_token"),
                         selected_feature=check_index(selected_feature, int(d_sae), "selected_feature"), **kwargs)

    @traitlets.validate("selected_token")
    def _valid_token(self, proposal: Any) -> int:
        return check_index(proposal["value"], len(self.tokens), "selected_token")

    @traitlets.validate("selected_feature")
    def _valid_feature(self, proposal: Any) -> int:
        return check_index(proposal["value"], max(self.d_sae, 1), "selected_feature")

    def active(self, position: int) -> list[tuple[int, float]]:
        """[(latent, activation)] the view lists at ``position``, largest first (what the payload holds)."""
        p = check_index(position, len(self.tokens), "position", allow_none=False)
        a, b = int(self.feature_offsets[p]), int(self.feature_offsets[p + 1])
        return [(int(i), float(v)) for i, v in zip(self.feature_indices[a:b], self.feature_values[a:b])]


def _cards(dashboard: Any, present: set[int], d_sae: int, labels: Mapping[int, str]) -> dict[str, Any]:
    """The ``card_*`` traits: the FeatureDashboardView's arrays of the features in ``present`` that ``dashboard``
    has (rows in the dashboard's order; a card without a label of its own takes ``labels``'); {} without a
    dashboard."""
    if dashboard is None:
        return {}
    from .feature_dashboard import FeatureDashboardView

    if not callable(getattr(dashboard, "card_arrays", None)) or not hasattr(dashboard, "feature_ids"):
        raise ViewValueError(f"dashboard: expected a FeatureDashboard (ew.feature_dashboard(lm, sae, texts)), got "
                             f"{type(dashboard).__name__}")
    if int(dashboard.d_sae) != d_sae:
        raise ViewValueError(f"dashboard: it is of a dictionary of {dashboard.d_sae} latents, these features of "
                             f"{d_sae}: build the dashboard with the SAE the text was analysed with")
    have = set(np.asarray(dashboard.feature_ids).tolist())
    arrays = dashboard.card_arrays(sorted(present & have))
    arrays["labels"] = [text or labels.get(int(f), "") for f, text in zip(arrays["feature_ids"], arrays["labels"])]
    view = FeatureDashboardView(**arrays)  # its checks and dtypes
    names = ("feature_ids", "labels", "strings", "raw_strings", "fire_counts", "n_tokens", "top_values", "top_docs",
             "top_positions", "top_tokens", "top_acts", "sample_values", "sample_docs", "sample_positions",
             "sample_tokens", "sample_acts", "hist", "hist_edges", "promoted_tokens", "promoted_values",
             "suppressed_tokens", "suppressed_values", "promoted_note")
    out = {f"card_{n}": getattr(view, n) for n in names}
    view.close()
    return {"has_dashboard": True, **out}
