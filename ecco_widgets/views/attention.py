"""Attention patterns, one small multiple per head."""

from __future__ import annotations

import traitlets

from .base import RowSpec, RowsView


class AttentionView(RowsView):
    """Hover a token to see how much it attends to the others, per head.

    ``AttentionView(tokens, attention, *, head_labels=None, selected_token=-1,
    n_input_tokens=None, raw_tokens=None)``: ``attention`` has shape
    ``(n_heads, n_tokens, n_tokens)`` (row = query, column = key); a 2-D
    ``(n_tokens, n_tokens)`` array is taken as a single head.  ``selected_token`` is a token.
    ``exclude_first`` (default True, a toggle in the view): attention to the first token (the attention sink, which
    takes most of the weight in most heads) is left out of the colour scales, so the rest of each head's pattern
    shows; the legend says so while it is on.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import AttentionView
        >>> att = np.tril(np.ones((2, 3, 3))); att /= att.sum(-1, keepdims=True)
        >>> a = AttentionView(tokens=["a", "b", "c"], attention=att)
        >>> a.head_labels
        ['H0', 'H1']
    """

    _bundle = "attention"
    _rows = RowSpec("attention", "n_heads", "head_labels", "H{}", "selected_token", square=True)
    attention, head_labels, selected_token = _rows.traits()
    exclude_first = traitlets.Bool(True).tag(sync=True)
