"""Input saliency: which earlier tokens explain each generated token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import traitlets

from ._base import (
    Array,
    TokenView,
    ViewValueError,
    array_serialization,
    as_int_array,
    check_index,
    stack_methods,
)

_STYLES = ("minimal", "detailed")


class SaliencyView(TokenView):
    """Tokens coloured by how much they explain a chosen target token.

    ``attributions`` is a dict ``{method: (n_targets, n_tokens) array}`` (or one
    ``(n_methods, n_targets, n_tokens)`` array with ``methods``).  Row ``i`` explains
    ``tokens[targets[i]]``. With ``causal=True`` (default, a causal LM) a token is explained by the
    tokens before it only: entries at positions ``>= targets[i]`` are set to 0 and only those
    tokens are coloured. ``causal=False`` (bidirectional encoders: masked LMs, classifiers) keeps
    and colours every position, including the target itself.

    Example::

        >>> import numpy as np
        >>> from ecco_widgets.views import SaliencyView
        >>> toks = ["The", " cat", " sat", " down"]
        >>> v = SaliencyView(tokens=toks, targets=[2, 3], n_input_tokens=2,
        ...                  attributions={"ig": np.random.rand(2, 4)})
        >>> v.method
        'ig'
    """

    _bundle = "saliency"

    targets = Array(ndim=1).tag(sync=True, **array_serialization)
    methods = traitlets.List(traitlets.Unicode()).tag(sync=True)
    attributions = Array(ndim=3).tag(sync=True, **array_serialization)
    method = traitlets.Unicode("").tag(sync=True)
    style = traitlets.Unicode("minimal").tag(sync=True)
    selected_token = traitlets.Int(-1).tag(sync=True)
    causal = traitlets.Bool(True).tag(sync=True)

    def __init__(
        self,
        tokens: Sequence[str],
        targets: Sequence[int] | np.ndarray,
        attributions: Mapping[str, np.ndarray] | np.ndarray,
        *,
        methods: Sequence[str] | None = None,
        method: str | None = None,
        n_input_tokens: int | None = None,
        raw_tokens: Sequence[str] | None = None,
        style: str = "minimal",
        selected_token: int = -1,
        causal: bool = True,
        **kwargs: Any,
    ) -> None:
        tk = self._token_kwargs(tokens, raw_tokens, n_input_tokens)
        n = len(tk["tokens"])
        tg = as_int_array(targets, "targets").reshape(-1).astype(np.int32)
        if tg.size and (tg.min() < 0 or tg.max() >= n):
            raise ViewValueError(
                f"targets: positions must be in 0..{n - 1} (there are {n} tokens), got {tg.tolist()}"
            )
        names, attr = stack_methods(attributions, methods)
        attr = np.array(attr, dtype=np.float32)
        if attr.shape[1:] != (tg.size, n):
            raise ViewValueError(
                f"attributions: expected shape (n_targets={tg.size}, n_tokens={n}) per method, "
                f"got {tuple(attr.shape[1:])}"
            )
        # Causal: a token is explained only by the tokens before it. Bidirectional: by every token.
        causal = bool(causal)
        if causal and tg.size:
            mask = np.arange(n)[None, :] >= tg[:, None]
            attr[:, mask] = 0.0
        method = names[0] if method is None else method
        if method not in names:
            raise ViewValueError(f"method: unknown method {method!r}; available: {names}")
        if style not in _STYLES:
            raise ViewValueError(f"style: {style!r} is not one of {', '.join(_STYLES)}")
        selected_token = check_index(selected_token, n, "selected_token")
        super().__init__(
            **tk,
            targets=tg,
            methods=names,
            attributions=attr,
            method=method,
            style=style,
            selected_token=selected_token,
            causal=causal,
            **kwargs,
        )

    @traitlets.validate("method")
    def _valid_method(self, proposal: Any) -> str:
        value = proposal["value"]
        if self.methods and value not in self.methods:
            raise ViewValueError(f"method: unknown method {value!r}; available: {list(self.methods)}")
        return value

    @traitlets.validate("style")
    def _valid_style(self, proposal: Any) -> str:
        if proposal["value"] not in _STYLES:
            raise ViewValueError(f"style: {proposal['value']!r} is not one of {', '.join(_STYLES)}")
        return proposal["value"]

    def _check(self) -> None:
        self._check_tokens()
        n = len(self.tokens)
        if self.attributions.shape[1:] != (self.targets.size, n):
            raise ViewValueError(
                f"attributions: shape {tuple(self.attributions.shape)} does not match "
                f"(n_methods, n_targets={self.targets.size}, n_tokens={n})"
            )
        if len(self.methods) != self.attributions.shape[0]:
            raise ViewValueError("methods: one name per attribution array is required")
        check_index(self.selected_token, n, "selected_token")

    def attribution(self, method: str | None = None) -> np.ndarray:
        """The ``(n_targets, n_tokens)`` attribution matrix of ``method`` (default: current)."""
        method = self.method if method is None else method
        if method not in self.methods:
            raise ViewValueError(f"method: unknown method {method!r}; available: {list(self.methods)}")
        return self.attributions[self.methods.index(method)]
