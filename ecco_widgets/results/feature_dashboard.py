"""A feature dashboard (``ew.feature_dashboard(lm, sae, texts)``): per feature its top-activating contexts, a uniform
sample of its firing tokens (shown by activation quantile), its activation histogram, its firing density and the
tokens its decoder direction promotes and suppresses. Saved and loaded as one .npz (``dash.save(path)``,
``FeatureDashboard.load(path)``); ``dash.view()`` shows it, ``dash.payload(feature)`` is one card's data.

Arrays (F chosen features, k top entries, S samples, W = 2 window + 1):
feature_ids int64 (F,): the latents shown; top_values float32 (F, k) (-inf: empty slot), top_docs int64 (F, k) (-1: empty),
top_positions int32 (F, k), top_context_ids int32 (F, k, W) (-1 outside the text), top_context_values float32
(F, k, W) (the feature's activation there); the same for ``sample_*`` (F, S), sorted by activation, descending;
hist int64 (F, len(hist_edges) + 1) (bin 0: (0, edges[0]), bin i: [edges[i-1], edges[i]), the last: [edges[-1],
inf)); fire_counts int64 (F,); promoted_ids / suppressed_ids int64 (F, n), promoted_values / suppressed_values
float32 (F, n) (logits per unit of activation); vocab_ids int64 (V,) with vocab_strings (V,), the display text of
every token id used (vocab_raw: their raw pieces).

>>> import numpy as np
>>> d = FeatureDashboard(name="s", site="h.0 output", d_sae=4, feature_ids=np.array([2]), n_tokens=10, n_docs=1,
...     k=1, window=0, top_values=np.array([[1.5]], np.float32), top_docs=np.array([[0]]),
...     top_positions=np.array([[3]], np.int32), top_context_ids=np.array([[[7]]]),
...     top_context_values=np.array([[[1.5]]], np.float32), fire_counts=np.array([2]),
...     hist=np.zeros((1, 82), np.int64), vocab_ids=np.array([7]), vocab_strings=[" cat"])
>>> d.density().tolist(), d.payload(2)["top"][0]["tokens"]
([0.2], [' cat'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

TABLES = ("top", "sample")
TABLE_ARRAYS = ("values", "docs", "positions", "context_ids", "context_values")
#: quantile bands the sample is split into in a card (by activation, strongest first)
N_BANDS = 4


def _none(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.zeros(shape, dtype)


@dataclass(eq=False)
class FeatureDashboard:
    """The dashboard of ``feature_ids`` (latents) of one dictionary over a dataset (see the module docstring for the arrays)."""

    name: str
    site: str
    d_sae: int
    feature_ids: np.ndarray
    n_tokens: int
    n_docs: int
    k: int
    window: int
    top_values: np.ndarray
    top_docs: np.ndarray
    top_positions: np.ndarray
    top_context_ids: np.ndarray
    top_context_values: np.ndarray
    fire_counts: np.ndarray
    hist: np.ndarray
    vocab_ids: np.ndarray
    vocab_strings: list[str]
    sample_values: np.ndarray = field(default_factory=lambda: _none((0, 0), np.float32))
    sample_docs: np.ndarray = field(default_factory=lambda: _none((0, 0), np.int64))
    sample_positions: np.ndarray = field(default_factory=lambda: _none((0, 0), np.int32))
    sample_context_ids: np.ndarray = field(default_factory=lambda: _none((0, 0, 0), np.int32))
    sample_context_values: np.ndarray = field(default_factory=lambda: _none((0, 0, 0), np.float32))
    hist_edges: np.ndarray = field(default_factory=lambda: (2.0 ** (np.arange(-40, 41) / 4.0)).astype(np.float32))
    promoted_ids: np.ndarray = field(default_factory=lambda: _none((0, 0), np.int64))
    promoted_values: np.ndarray = field(default_factory=lambda: _none((0, 0), np.float32))
    suppressed_ids: np.ndarray = field(default_factory=lambda: _none((0, 0), np.int64))
    suppressed_values: np.ndarray = field(default_factory=lambda: _none((0, 0), np.float32))
    promoted_note: str = ""
    vocab_raw: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    model_name: str = ""
    seed: int = 0
    source: str = ""

    # ----- reading -----
    @property
    def n_features(self) -> int:
        return int(len(self.feature_ids))

    def density(self) -> np.ndarray:
        """float64 (F,): the share of the dataset's tokens on which each feature fires (activation > 0)."""
        return np.asarray(self.fire_counts, np.float64) / max(int(self.n_tokens), 1)

    def row(self, feature: int) -> int:
        """The row of latent ``feature`` in the arrays (InputError naming the chosen ones when it is not there)."""
        hits = np.flatnonzero(np.asarray(self.feature_ids) == int(feature))
        if isinstance(feature, bool) or not hits.size:
            shown = ", ".join(map(str, np.asarray(self.feature_ids)[:10].tolist()))
            raise InputError(f"Feature {feature!r} is not in this dashboard (it has {self.n_features}: {shown}"
                             f"{', ...' if self.n_features > 10 else ''}).")
        return int(hits[0])

    def label(self, feature: int) -> str:
        """The feature's label ("" when none)."""
        row = self.row(feature)
        return self.labels[row] if row < len(self.labels) else ""

    def text_of(self, ids: np.ndarray) -> list[str]:
        """The display text of token ids ("" for -1)."""
        table = dict(zip(np.asarray(self.vocab_ids).tolist(), self.vocab_strings))
        return [table.get(int(i), "") if int(i) >= 0 else "" for i in np.asarray(ids).reshape(-1)]

    def contexts(self, feature: int, table: str = "top") -> list[dict[str, Any]]:
        """The feature's top contexts (or, table="sample", its sampled ones, strongest first): per entry its
        activation, document, position, the window's tokens (text, "" outside the text) and activations."""
        row = self.row(feature)
        if table == "sample" and not self.sample_values.size:
            return []
        values, docs = getattr(self, f"{table}_values")[row], getattr(self, f"{table}_docs")[row]
        out = []
        for j in np.flatnonzero(docs >= 0):
            ids = getattr(self, f"{table}_context_ids")[row, j]
            out.append({"value": float(values[j]), "doc": int(docs[j]),
                        "position": int(getattr(self, f"{table}_positions")[row, j]),
                        "tokens": self.text_of(ids), "ids": ids.tolist(),
                        "activations": getattr(self, f"{table}_context_values")[row, j].tolist()})
        return out

    def payload(self, feature: int) -> dict[str, Any]:
        """One card's data as plain Python (what a FeatureExplorer opening this feature needs): label, density,
        max activation, top contexts, quantile bands of the sample, histogram, promoted and suppressed tokens."""
        row = self.row(feature)
        sample = self.contexts(feature, "sample")
        size = len(sample)
        bands = [sample[b * size // N_BANDS:(b + 1) * size // N_BANDS] for b in range(N_BANDS)] if size else []
        promoted = [(t, float(v)) for t, v in zip(self.text_of(self.promoted_ids[row]), self.promoted_values[row])] \
            if self.promoted_ids.size else []
        suppressed = [(t, float(v)) for t, v in zip(self.text_of(self.suppressed_ids[row]),
                                                     self.suppressed_values[row])] if self.suppressed_ids.size else []
        return {"feature": int(feature), "label": self.label(feature), "density": float(self.density()[row]),
                "fire_count": int(self.fire_counts[row]), "max": float(self.top_values[row, 0]) if
                self.top_docs[row, 0] >= 0 else 0.0, "top": self.contexts(feature), "bands": bands,
                "hist": self.hist[row].tolist(), "hist_edges": np.asarray(self.hist_edges).tolist(),
                "promoted": promoted, "suppressed": suppressed, "promoted_note": self.promoted_note}

    # ----- the view -----
    def card_arrays(self, features: Any = None) -> dict[str, Any]:
        """The cards of ``features`` (latents, default every one; in this dashboard's row order) as a view's arrays:
        the FeatureDashboardView's keyword arguments (``feature_ids`` (F',), ``labels``, ``strings`` / ``raw_strings``
        (only the token texts those rows use), ``top_*`` (F', k[, W]), ``sample`` / ``promoted`` dicts or None,
        ``hist`` ...); token arrays index ``strings`` (-1: none). A FeatureExplorer sends the cards of its text's
        features this way.

        >>> d = FeatureDashboard(name="s", site="h.0 output", d_sae=4, feature_ids=np.array([2]), n_tokens=10,
        ...     n_docs=1, k=1, window=0, top_values=np.array([[1.5]], np.float32), top_docs=np.array([[0]]),
        ...     top_positions=np.array([[3]], np.int32), top_context_ids=np.array([[[7]]]),
        ...     top_context_values=np.array([[[1.5]]], np.float32), fire_counts=np.array([2]),
        ...     hist=np.zeros((1, 82), np.int64), vocab_ids=np.array([7]), vocab_strings=[" cat"])
        >>> a = d.card_arrays([2]); a["strings"], a["top_tokens"].tolist()
        ([' cat'], [[[0]]])
        """
        rows = np.arange(self.n_features) if features is None else \
            np.array(sorted({self.row(f) for f in features}), np.int64)
        vocab = np.asarray(self.vocab_ids)
        raw = self.vocab_raw if len(self.vocab_raw) == len(self.vocab_strings) else self.vocab_strings
        id_arrays = [getattr(self, f"{t}_context_ids")[rows] for t in TABLES if getattr(self, f"{t}_values").size]
        if self.promoted_ids.size:
            id_arrays += [self.promoted_ids[rows], self.suppressed_ids[rows]]
        used = np.unique(np.concatenate([np.asarray(a).reshape(-1) for a in id_arrays] + [np.zeros(0, np.int64)]))
        used = used[used >= 0] if features is not None else vocab  # every row: the whole table, as stored
        keep = np.searchsorted(vocab, used) if vocab.size else np.zeros(0, np.int64)

        def index(ids: np.ndarray) -> np.ndarray:  # token ids -> rows of the strings table (-1 stays -1)
            where = np.searchsorted(used, ids) if used.size else np.zeros(ids.shape, np.int64)
            return np.where(ids >= 0, where, -1).astype(np.int32)

        def table(name: str) -> tuple:
            values = getattr(self, f"{name}_values")[rows]
            return (np.where(np.isfinite(values), values, 0.0), getattr(self, f"{name}_docs")[rows],
                    getattr(self, f"{name}_positions")[rows], index(getattr(self, f"{name}_context_ids")[rows]),
                    getattr(self, f"{name}_context_values")[rows])

        top = dict(zip(("top_values", "top_docs", "top_positions", "top_tokens", "top_acts"), table("top")))
        sample = dict(zip(("values", "docs", "positions", "tokens", "acts"), table("sample"))) \
            if self.sample_values.size else None
        promoted = {n: (index(getattr(self, f"{n}_ids")[rows]), getattr(self, f"{n}_values")[rows])
                    for n in ("promoted", "suppressed")} if self.promoted_ids.size else None
        labels = [self.labels[r] if r < len(self.labels) else "" for r in rows.tolist()]
        return {"feature_ids": np.asarray(self.feature_ids)[rows], "labels": labels,
                "strings": [self.vocab_strings[i] for i in keep.tolist()],
                "raw_strings": [raw[i] for i in keep.tolist()],
                "fire_counts": self.fire_counts[rows], "n_tokens": self.n_tokens, "n_docs": self.n_docs, **top,
                "sample": sample, "promoted": promoted, "hist": self.hist[rows], "hist_edges": self.hist_edges,
                "promoted_note": self.promoted_note}

    def view(self, **options: Any):
        """A FeatureDashboardView: one card per feature, searchable by index or label (options: title, theme,
        query, selected_feature)."""
        from ..views.feature_dashboard import FeatureDashboardView

        options.setdefault("title", f"{self.name}: {self.n_features} features over {self.n_docs} texts")
        return FeatureDashboardView(**self.card_arrays(), **options)

    # ----- save / load -----
    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (.npz); ``FeatureDashboard.load(path)`` reads it back."""
        from .storage import save_result

        return save_result(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "FeatureDashboard":
        from .storage import read_result

        return read_result(path, {cls.__name__: cls})

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file modified by hand); [] when nothing does."""
        problems, n_f = [], self.n_features
        for table, size in (("top", self.k), ("sample", None)):
            values = getattr(self, f"{table}_values")
            if table == "sample" and not values.size:
                continue
            lead = values.shape
            if values.ndim != 2 or lead[0] != n_f or (size is not None and lead[1] != size):
                problems.append(f"{table}_values of shape {values.shape} for {n_f} features")
                continue
            for name in TABLE_ARRAYS[1:]:
                a = getattr(self, f"{table}_{name}")
                if a.shape[:2] != lead or (name.startswith("context") and a.shape[2:] != (2 * self.window + 1,)):
                    problems.append(f"{table}_{name} of shape {a.shape}, expected {lead} (window {self.window})")
        if self.hist.shape != (n_f, len(self.hist_edges) + 1):
            problems.append(f"hist of shape {self.hist.shape} for {n_f} features and {len(self.hist_edges)} edges")
        if self.fire_counts.shape != (n_f,) or (self.fire_counts.size and (
                self.fire_counts.min() < 0 or self.fire_counts.max() > self.n_tokens)):
            problems.append("fire_counts must be (F,) counts within 0..n_tokens")
        if len(self.vocab_strings) != len(self.vocab_ids):
            problems.append(f"{len(self.vocab_strings)} vocab strings for {len(self.vocab_ids)} ids")
        if self.feature_ids.size and (self.feature_ids.min() < 0 or self.feature_ids.max() >= self.d_sae):
            problems.append(f"features outside 0..{self.d_sae - 1}")
        return problems

    def __repr__(self) -> str:
        return (f"FeatureDashboard({self.name!r} at {self.site}: {self.n_features} of {self.d_sae} features over "
                f"{self.n_docs} texts, {self.n_tokens} tokens; top {self.k}, window {self.window})")

