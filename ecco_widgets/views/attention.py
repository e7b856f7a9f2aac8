"""Attention patterns, one small multiple per head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets

from ._base import (
    Array,
    TokenView,
    array_serialization,
    as_float_array,
    check_index,
    check_labels,
    check_shape,
)


class AttentionView(TokenView):
    """Hover a token to see how much it attends to the others, per head.

    ``attention`` has shape ``(n_heads, n_tokens, n_tokens)`` (row = query, column = key);
    a 2-D ``(n_tokens, n_tokens)`` array is taken as a single head.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import AttentionView
        >>> att = np.tril(np.ones((2, 3, 3))); att /= att.sum(-1, keepdims=True)
        >>> a = AttentionView(tokens=["a", "b", "c"], attention=att)
        >>> a.head_labels
        ['H0', 'H1']
    """

    _bundle = "attention"

    attention = Array(ndim=3).tag(sync=True, **array_serialization)
    head_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_token = traitlets.Int(-1).tag(sync=True)

    def __init__(
        self,
        tokens: Sequence[str],
        attention: Any,
        *,
        head_labels: Sequence[str] | None = None,
        n_input_tokens: int | None = None,
        raw_tokens: Sequence[str] | None = None,
        selected_token: int = -1,
        **kwargs: Any,
    ) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        a = as_float_array(attention, "attention")
        if a.ndim == 2:
            a = a[None]
        check_shape(a, (None, n, n), "attention", f"(n_heads, n_tokens={n}, n_tokens={n})")
        labels = check_labels(head_labels, a.shape[0], "head_labels", "H{}")
        sel = check_index(selected_token, n, "selected_token")
        super().__init__(**tk, attention=a, head_labels=labels, selected_token=sel, **kwargs)

    def _check(self) -> None:
        self._check_tokens()
        n = len(self.tokens)
        check_shape(self.attention, (None, n, n), "attention", f"(n_heads, n_tokens={n}, n_tokens={n})")
        check_labels(self.head_labels, self.attention.shape[0], "head_labels", "")
        check_index(self.selected_token, n, "selected_token")
