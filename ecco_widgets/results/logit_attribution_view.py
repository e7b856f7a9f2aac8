"""``r.view()`` of a :class:`~ecco_widgets.results.logit_attribution.LogitAttribution`: the head-level attribution laid
out as a layers x heads grid (+ an MLP column), with each head's promoted tokens and attention pattern from the
output it came from."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.components.dla import promoted_tokens
from ..errors import NotAvailableError

#: How many promoted tokens each head (and MLP) lists.
PROMOTED_K = 5


def head_arrays(r: Any) -> dict[str, Any]:
    """The view's attribution arrays from a head-unit result: head grid (n_layers, n_heads), MLP column, the
    per-layer totals, the accumulated curve and the embedding / bias terms."""
    kinds = np.asarray(r.kinds)
    heads = kinds == "head"
    n_layers, n_heads = r.n_layers, int(r.indices[heads].max()) + 1
    grid = np.zeros((n_layers, n_heads), np.float32)
    grid[r.layers[heads], r.indices[heads]] = r.values[heads]
    mlp = np.zeros(n_layers, np.float32)
    mlp[r.layers[kinds == "mlp"]] = r.values[kinds == "mlp"]
    terms = np.flatnonzero((kinds == "embed") | (kinds == "bias"))
    return {"head_values": grid, "mlp_values": mlp, "attn_totals": r.attn_by_layer, "mlp_totals": r.mlp_by_layer,
            "accumulated": r.accumulated, "term_labels": [r.labels[i] for i in terms],
            "term_values": r.values[terms]}


def logit_attribution_view(r: Any, **view_options: Any) -> Any:
    """The LogitAttributionView of ``r``: needs head-level values (a layer or neuron result is recomputed by head
    from the output it came from), the promoted tokens and the attention pattern (``attention=True``) from that
    output when it is still attached to its model."""
    from ..views import LogitAttributionView

    out = getattr(r, "_out", None)
    if r.unit != "head":
        if out is None or getattr(out, "_components", None) is None:
            raise NotAvailableError(f"The view lays out heads, and this {r.unit}-level result has no output to "
                                    "recompute them from (a loaded file): call out.logit_attribution(..., "
                                    "unit='head') on an output analysed with components=True.")
        r = out.logit_attribution(position=r.position, target=r.target_id,
                                  foil=None if r.foil_id < 0 else r.foil_id, unit="head")
    options: dict[str, Any] = head_arrays(r)
    recorded = None if out is None else getattr(out, "_components", None)
    if out is not None:
        options.update(tokens=list(out.tokens), raw_tokens=list(out.raw_tokens), position=r.position)
        weights = getattr(out, "attention_weights", None)
        shape = options["head_values"].shape
        if weights is not None and weights.ndim == 4 and weights.shape[:2] == shape:
            options["attention"] = np.asarray(weights[:, :, r.position, :], np.float32)
        elif weights is None and recorded is not None and getattr(recorded, "attention_calls", None):
            rows = r.attention_pattern()  # every head's row at the position, recomputed (small: layers x heads x n)
            if rows.shape[:2] == shape:
                options["attention"] = rows
    if recorded is not None:
        ids, values = promoted_tokens(recorded.parts, recorded.inputs, r.position, PROMOTED_K)
        vocab, index = np.unique(ids[ids >= 0], return_inverse=True)
        flat = np.full(ids.shape, -1, np.int64)
        flat[ids >= 0] = index
        names = _names(out, vocab)
        options.update(promoted_vocab=[names[int(t)] for t in vocab], promoted_index=flat, promoted_values=values)
    options.update(target=r.target, foil=r.foil, logit=r.logit, error=r.error, note=r.note)
    return LogitAttributionView(**{**options, **view_options})


def _names(out: Any, ids: np.ndarray) -> dict[int, str]:
    """Display text of token ids: the output's vocab_text, else its model's decoder, else the id."""
    found = {int(t): out.vocab_text[int(t)] for t in ids if int(t) in out.vocab_text}
    missing = np.array([t for t in ids if int(t) not in found], np.int64)
    lm = getattr(getattr(out, "_encode_watch", None), "__self__", None)
    if missing.size and hasattr(lm, "vocab_text"):
        found.update({int(k): v for k, v in lm.vocab_text(missing).items()})
    return {int(t): found.get(int(t), str(int(t))) for t in ids}
