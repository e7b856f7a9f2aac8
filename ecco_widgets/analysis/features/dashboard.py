"""What a feature dashboard keeps of a dataset, collected in one pass in bounded memory and merged exactly.

Per chosen feature (F of them), a :class:`DashboardCollector` keeps:

- its ``k`` top-activating tokens, each with the token ids and the feature's activations in a window of ``window``
  tokens either side: a top-k table of F x k entries (never more, whatever the dataset's size), ranked by the total
  order (activation descending, then document, then position ascending), so that the top-k of a union of shards is
  the top-k of the shards' top-k tables: merging is exact and independent of the order of documents;
- a uniform sample of ``n_samples`` of its firing tokens (same windows): the entries with the smallest priority, a
  hash of (seed, document, position, feature) (bottom-k sampling: deterministic for a seed, and also exact under
  merge); a view splits it by activation into quantile bands;
- the histogram of its activations over fixed bins (edges ``2 ** (j / 4)``, j = -40..40, plus a bin below the first
  edge and one above the last) and the number of tokens it fires on (activation > 0): integer counts, summed.

Memory: O(F x (k + n_samples) x (2 window + 1)) plus one document's active entries, checked before any work
(:func:`ecco_widgets.memory.require`).

>>> import numpy as np
>>> c = DashboardCollector(d_sae=4, k=2, window=1, n_samples=2)
>>> c.add(doc=0, token_ids=np.array([7, 8, 9]), indices=np.array([[1, -1], [1, 3], [-1, -1]]),
...       values=np.array([[0.5, 0], [2.0, 1.0], [0, 0]], np.float32))
>>> c.top_values[1].tolist(), c.top_positions[1].tolist(), c.top_context_ids[1, 0].tolist()
([2.0, 0.5], [1, 0], [7, 8, 9])
>>> c.fire_counts.tolist(), c.n_tokens, c.entries() <= c.capacity()
([0, 2, 0, 1], 3, True)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import InputError
from ...memory import require

#: histogram bin edges (activations): 2 ** (j / 4) for j = -40..40; bin 0 is (0, 2**-10), the last [2**10, inf)
EDGES = (2.0 ** (np.arange(-40, 41) / 4.0)).astype(np.float32)
N_BINS = len(EDGES) + 1
TABLES = ("top", "sample")
FIELDS = ("values", "docs", "positions", "context_ids", "context_values", "priority")
_MASK64 = (1 << 64) - 1


def priorities(seed: int, docs: np.ndarray, positions: np.ndarray, features: np.ndarray) -> np.ndarray:
    """uint64 (n,): splitmix64 of (seed, doc, position, feature); the bottom-k of these is a uniform sample.

    >>> priorities(0, np.array([1]), np.array([2]), np.array([3])).dtype.name
    'uint64'
    """
    x = np.full(len(docs), (seed * 0x9E3779B97F4A7C15) & _MASK64, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in (docs, positions, features):
            x = _splitmix(x ^ np.asarray(part, dtype=np.int64).astype(np.uint64))
    return x


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class DashboardCollector:
    """One shard's (or the merged) dashboard state of ``features`` (default: all ``d_sae`` latents).

    Tables (``top_*`` of shape (F, k), ``sample_*`` of shape (F, n_samples)): values float32 (-inf empty), docs
    int64 (-1 empty), positions int32, context_ids int32 (F, ., 2 window + 1; -1 outside the document),
    context_values float32 (the feature's activation at those tokens), priority uint64 (the sample's hash).
    hist int64 (F, N_BINS), fire_counts int64 (F,), n_tokens, n_docs."""

    def __init__(self, d_sae: int, features: Sequence[int] | None = None, k: int = 20, window: int = 8,
                 n_samples: int = 40, seed: int = 0):
        for name, value, least in (("k", k, 1), ("window", window, 0), ("n_samples", n_samples, 0),
                                   ("d_sae", d_sae, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise InputError(f"{name} must be a whole number >= {least}, got {value!r}.")
        self.d_sae, self.k, self.window, self.n_samples, self.seed = int(d_sae), int(k), int(window), \
            int(n_samples), int(seed)
        n_f = self.d_sae if features is None else len(check_features(features, self.d_sae))
        width = 2 * self.window + 1
        require(n_f * (self.k + self.n_samples) * (width * 8 + 24) + n_f * (N_BINS + 1) * 8 + self.d_sae * 8,
                f"The dashboard's tables of {n_f} features (top {self.k}, {self.n_samples} samples, window "
                f"{self.window})", "Choose fewer features (features=[...]), a smaller k, n_samples or window.")
        chosen = np.arange(self.d_sae) if features is None else check_features(features, self.d_sae)
        self.features = chosen.astype(np.int64)
        self.column = np.full(self.d_sae, -1, np.int64)
        self.column[self.features] = np.arange(n_f)
        for table, size in (("top", self.k), ("sample", self.n_samples)):
            setattr(self, f"{table}_values", np.full((n_f, size), -np.inf, np.float32))
            setattr(self, f"{table}_docs", np.full((n_f, size), -1, np.int64))
            setattr(self, f"{table}_positions", np.full((n_f, size), -1, np.int32))
            setattr(self, f"{table}_context_ids", np.full((n_f, size, width), -1, np.int32))
            setattr(self, f"{table}_context_values", np.zeros((n_f, size, width), np.float32))
            setattr(self, f"{table}_priority", np.zeros((n_f, size), np.uint64))
        self.hist = np.zeros((n_f, N_BINS), np.int64)
        self.fire_counts = np.zeros(n_f, np.int64)
        self.n_tokens = 0
        self.n_docs = 0
        self.peak_entries = 0  # the most entries the tables ever held (never above capacity())

    # ----- size -----
    def capacity(self) -> int:
        """F x (k + n_samples): the most entries the tables can hold."""
        return len(self.features) * (self.k + self.n_samples)

    def entries(self) -> int:
        """The entries held now (filled slots of both tables)."""
        return int((self.top_docs >= 0).sum() + (self.sample_docs >= 0).sum())

    # ----- one document -----
    def add(self, doc: int, token_ids: np.ndarray, indices: np.ndarray, values: np.ndarray) -> None:
        """One document: its token ids (n,) and its active latents per token as ``lm.analyze(saes=...)`` stores
        them, indices int (n, k_max) padded with -1 and values float (n, k_max). Only values > 0 count as firing."""
        token_ids = np.asarray(token_ids, np.int64).reshape(-1)
        indices, values = np.asarray(indices), np.asarray(values, np.float32)
        n = len(token_ids)
        if indices.shape != values.shape or indices.ndim != 2 or indices.shape[0] != n:
            raise InputError(f"indices {indices.shape} and values {values.shape} must be (n_tokens={n}, k_max).")
        rows, slots = np.nonzero(indices >= 0)
        latents = indices[rows, slots].astype(np.int64)
        if latents.size and (latents.min() < 0 or latents.max() >= self.d_sae):
            raise InputError(f"latent indices must lie in 0..{self.d_sae - 1}; got {latents.max()}.")
        cols = self.column[latents]
        vals = values[rows, slots]
        keep = (cols >= 0) & (vals > 0)
        rows, cols, vals = rows[keep].astype(np.int64), cols[keep], vals[keep]
        self.n_tokens += n
        self.n_docs += 1
        self.fire_counts += np.bincount(cols, minlength=len(self.features))
        bins = np.searchsorted(EDGES, vals, side="right")
        self.hist += np.bincount(cols * N_BINS + bins, minlength=self.hist.size).reshape(self.hist.shape)
        if not len(cols):
            return
        docs = np.full(len(cols), int(doc), np.int64)
        prio = priorities(self.seed, docs, rows, self.features[cols])
        # only the candidates that can enter a table get windows: above the k-th value / below the sample's bound
        top_ok = _beats(self.top_values[cols, -1], -vals, self.top_docs[cols, -1] < 0)
        sample_ok = _beats(self.sample_priority[cols, -1], prio, self.sample_docs[cols, -1] < 0, reverse=True) \
            if self.n_samples else np.zeros(len(cols), bool)
        wanted = top_ok | sample_ok
        ctx_ids, ctx_vals = self._windows(token_ids, rows[wanted], cols[wanted], rows, cols, vals)
        new = {"values": vals[wanted], "docs": docs[wanted], "positions": rows[wanted].astype(np.int32),
               "context_ids": ctx_ids, "context_values": ctx_vals, "priority": prio[wanted]}
        pick = {"top": top_ok[wanted], "sample": sample_ok[wanted]}
        for table in TABLES:
            if pick[table].any():
                self._keep(table, cols[wanted][pick[table]], {f: a[pick[table]] for f, a in new.items()})
        self.peak_entries = max(self.peak_entries, self.entries())

    def _windows(self, token_ids: np.ndarray, at_rows: np.ndarray, at_cols: np.ndarray, rows: np.ndarray,
                 cols: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, activations), each (m, 2 window + 1), around each (row, col) wanted; looked up in the document's
        sorted (col, row) keys, so no dense (n_tokens, F) array is built."""
        n, w = len(token_ids), self.window
        where = at_rows[:, None] + np.arange(-w, w + 1)[None, :]
        inside = (where >= 0) & (where < n)
        ids = np.where(inside, token_ids[np.clip(where, 0, max(n - 1, 0))], -1)
        keys = cols * n + rows
        order = np.argsort(keys, kind="stable")
        keys, sorted_vals = keys[order], vals[order]
        want = at_cols[:, None] * n + np.clip(where, 0, max(n - 1, 0))
        found = np.clip(np.searchsorted(keys, want), 0, max(len(keys) - 1, 0))
        hit = inside & (keys[found] == want) if len(keys) else np.zeros_like(inside)
        acts = np.where(hit, sorted_vals[found] if len(keys) else 0.0, 0.0).astype(np.float32)
        return ids.astype(np.int32), acts

    def _keep(self, table: str, cols: np.ndarray, new: dict[str, np.ndarray]) -> None:
        """The best entries per feature among the table's own and ``new`` (at columns ``cols``), written back."""
        size = getattr(self, f"{table}_values").shape[1]
        touched = np.unique(cols)
        old = {f: getattr(self, f"{table}_{f}")[touched].reshape(len(touched) * size, *getattr(
            self, f"{table}_{f}").shape[2:]) for f in FIELDS}
        old_cols = np.repeat(touched, size)
        filled = old["docs"] >= 0
        both = {f: np.concatenate([old[f][filled], new[f]]) for f in FIELDS}
        both_cols = np.concatenate([old_cols[filled], cols])
        order = _order(table, both_cols, both)
        both_cols = both_cols[order]
        starts = np.searchsorted(both_cols, both_cols, side="left")
        rank = np.arange(len(both_cols)) - starts
        keep = rank < size
        for f in FIELDS:
            array = getattr(self, f"{table}_{f}")
            array[touched] = _empty(f, array[touched].shape)
            array[both_cols[keep], rank[keep]] = both[f][order][keep]

    # ----- merging -----
    def state(self) -> dict[str, Any]:
        """Every array and count (picklable: what torch.distributed gathers)."""
        state: dict[str, Any] = {f"{t}_{f}": getattr(self, f"{t}_{f}") for t in TABLES for f in FIELDS}
        state.update(hist=self.hist, fire_counts=self.fire_counts, n_tokens=self.n_tokens, n_docs=self.n_docs,
                     peak_entries=self.peak_entries, settings=self.settings())
        return state

    def settings(self) -> dict[str, Any]:
        return {"d_sae": self.d_sae, "features": self.features.tolist(), "k": self.k, "window": self.window,
                "n_samples": self.n_samples, "seed": self.seed}

    def merge(self, state: dict[str, Any]) -> None:
        """Add another shard's :meth:`state` (collected with the same settings over other documents)."""
        if state["settings"] != self.settings():
            raise InputError("Dashboard shards collected with different settings cannot be merged.")
        self.hist += state["hist"]
        self.fire_counts += state["fire_counts"]
        self.n_tokens += int(state["n_tokens"])
        self.n_docs += int(state["n_docs"])
        for table in TABLES:
            filled = state[f"{table}_docs"] >= 0
            if filled.any():
                cols = np.nonzero(filled)[0]
                self._keep(table, cols, {f: state[f"{table}_{f}"][filled] for f in FIELDS})
        self.peak_entries = max(self.peak_entries, int(state["peak_entries"]), self.entries())


def _order(table: str, cols: np.ndarray, entries: dict[str, np.ndarray]) -> np.ndarray:
    """Sort by column, then the table's total order: top: activation descending, document, position; sample:
    priority, document, position (np.lexsort: last key first)."""
    first = -entries["values"].astype(np.float64) if table == "top" else entries["priority"]
    return np.lexsort((entries["positions"], entries["docs"], first, cols))


def _beats(bound: np.ndarray, candidate: np.ndarray, empty: np.ndarray, reverse: bool = False) -> np.ndarray:
    """Whether a candidate can enter a table whose last entry is ``bound`` (ties kept: the sort decides).
    top: candidate is -value and bound the k-th value; sample (reverse): candidate priority <= bound."""
    if reverse:
        return empty | (candidate <= bound)
    return empty | (-candidate >= bound)


def _empty(field: str, shape: tuple[int, ...]) -> np.ndarray:
    fill = {"values": -np.inf, "docs": -1, "positions": -1, "context_ids": -1, "context_values": 0.0,
            "priority": 0}[field]
    return np.full(shape, fill)


def check_features(features: Any, d_sae: int) -> np.ndarray:
    """``features`` as a sorted int64 array of distinct latents in 0..d_sae-1 (InputError otherwise)."""
    try:
        chosen = np.asarray(list(features), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"features must be a list of latent indices (0..{d_sae - 1}), got {features!r}.") from None
    if not chosen.size:
        raise InputError("features is empty: pass None for every latent, or a list of latent indices.")
    if chosen.min() < 0 or chosen.max() >= d_sae:
        raise InputError(f"features must lie in 0..{d_sae - 1} (the dictionary's d_sae={d_sae}); got "
                         f"{sorted(set(chosen[(chosen < 0) | (chosen >= d_sae)].tolist()))[:5]}.")
    if len(np.unique(chosen)) != len(chosen):
        raise InputError("features lists a latent twice; give each once.")
    return np.sort(chosen)
