"""Arrays prepared for the views from an output's fields: distinct token strings with indices into them, one layer's
attention heads.

>>> import numpy as np
>>> compact_vocab(np.array([[5, 7], [7, 5]]), {5: "a", 7: "b"})
(['a', 'b'], array([[0, 1],
       [1, 0]], dtype=int32))
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, NotAvailableError


def compact_vocab(ids: np.ndarray | None, vocab_text: dict[int, str]) -> tuple[list[str], np.ndarray | None]:
    """Turn token ids into (list of distinct display strings, indices into it) for the views."""
    if ids is None:
        return [], None
    unique, inverse = np.unique(ids, return_inverse=True)
    return [vocab_text.get(int(i), str(int(i))) for i in unique], inverse.reshape(ids.shape).astype(np.int32)


def attention_heads(weights: np.ndarray | None, layer: int, head: int | None, what: str) -> tuple[np.ndarray,
                                                                                                  list[str]]:
    """One layer of attention weights (n_layers, H, q, k): all heads (H, q, k), or one (1, q, k), and their labels."""
    if weights is None:
        raise NotAvailableError("No attention was captured; pass attention=True to analyze or generate.")
    n_layers = weights.shape[0]
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n_layers <= layer < n_layers:
        raise InputError(f"layer {layer!r} does not exist: the {what} has {n_layers} layers (0..{n_layers - 1}).")
    chosen = weights[layer]
    n_heads = chosen.shape[0]
    if head is None:
        return chosen, [f"head {h}" for h in range(n_heads)]
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not 0 <= head < n_heads:
        raise InputError(f"head {head} does not exist: layer {layer} has {n_heads} heads (0..{n_heads - 1}).")
    return chosen[head: head + 1], [f"head {head}"]
