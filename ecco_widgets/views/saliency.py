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


def _completeness_rows(errors: Mapping[str, np.ndarray] | None, methods: list[str], n_targets: int) -> np.ndarray:
    """{method: (n_targets,) relative error} -> float32 (n_methods, n_targets), NaN where a method has none."""
    if errors is None:
        return np.zeros((0, 0), dtype=np.float32)
    if not isinstance(errors, Mapping):
        raise ViewValueError("completeness_error: expected a dict {method: (n_targets,) array of relative errors}")
    if not errors:
        return np.zeros((0, 0), dtype=np.float32)
    rows = np.full((len(methods), n_targets), np.nan, dtype=np.float32)
    for name, values in errors.items():
        if name not in methods:
            raise ViewValueError(f"completeness_error: unknown method {name!r}; available: {methods}")
        row = np.asarray(values, dtype=np.float32).reshape(-1)
        if row.shape != (n_targets,):
            raise ViewValueError(f"completeness_error[{name!r}]: expected {n_targets} values (one per target), "
                                 f"got {row.size}")
        if (row < 0).any():
            raise ViewValueError(f"completeness_error[{name!r}]: relative errors are >= 0 (or NaN for unknown)")
        rows[methods.index(name)] = row
    return rows


class SaliencyView(TokenView):
    """Tokens coloured by how much they explain a chosen target token.

    ``attributions`` is a dict ``{method: (n_targets, n_tokens) array}`` (or one
    ``(n_methods, n_targets, n_tokens)`` array with ``methods``).  Row ``i`` explains
    ``tokens[targets[i]]``. With ``causal=True`` (default, a causal LM) a token is explained by the
    tokens before it only: entries at positions ``>= targets[i]`` are set to 0 and only those
    tokens are coloured. ``causal=False`` (bidirectional encoders: masked LMs, classifiers) keeps
    and colours every position, including the target itself. ``completeness_error`` (optional,
    ``{method: (n_targets,) array}``): integrated gradients' relative completeness error per
    target; the tooltip shows it, and targets above ``ew.errors.COMPLETENESS_TOLERANCE`` (1%) are marked.

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
    # (n_methods, n_targets) relative completeness error; NaN for a method without one; (0, 0) when none is given
    completeness_error = Array(ndim=2).tag(sync=True, **array_serialization)

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
        completeness_error: Mapping[str, np.ndarray] | None = None,
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
            completeness_error=_completeness_rows(completeness_error, names, tg.size),
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
        if self.completeness_error.size and self.completeness_error.shape != self.attributions.shape[:2]:
            raise ViewValueError(
                f"completeness_error: shape {tuple(self.completeness_error.shape)} does not match "
                f"(n_methods={len(self.methods)}, n_targets={self.targets.size})"
            )
        check_index(self.selected_token, n, "selected_token")

    def attribution(self, method: str | None = None) -> np.ndarray:
        """The ``(n_targets, n_tokens)`` attribution matrix of ``method`` (default: current)."""
        method = self.method if method is None else method
        if method not in self.methods:
            raise ViewValueError(f"method: unknown method {method!r}; available: {list(self.methods)}")
        return self.attributions[self.methods.index(method)]
