"""Input saliency: which earlier tokens explain each generated token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, as_float_array, as_int_array
from .base import TokenView, check_choice, check_index, check_tokens

_STYLES = ("minimal", "detailed")


def stack_methods(
    attributions: Any, methods: Iterable[str] | None, name: str = "attributions"
) -> tuple[list[str], Any]:
    """Accept ``{method: (n_targets, n_tokens)}`` or an array; return (methods, 3-D array-like)."""
    if isinstance(attributions, dict):
        if not attributions:
            raise ViewValueError(f"{name}: the dict is empty; give at least one method")
        keys = [str(k) for k in attributions]
        if methods is not None and list(methods) != keys:
            raise ViewValueError(f"methods {list(methods)} do not match the keys of {name} {keys}")
        arrays = []
        first_shape = None
        for k, v in attributions.items():
            a = as_float_array(v, f"{name}[{k!r}]")
            if a.ndim != 2:
                raise ViewValueError(
                    f"{name}[{k!r}]: expected shape (n_targets, n_tokens), got {tuple(a.shape)}"
                )
            if first_shape is None:
                first_shape = a.shape
            elif a.shape != first_shape:
                raise ViewValueError(
                    f"{name}[{k!r}]: shape {tuple(a.shape)} differs from {name}[{keys[0]!r}] "
                    f"shape {tuple(first_shape)}"
                )
            arrays.append(a.astype(np.float32))
        return keys, np.stack(arrays)
    arr = as_float_array(attributions, name)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ViewValueError(
            f"{name}: expected (n_methods, n_targets, n_tokens) or a dict of 2-D arrays, "
            f"got shape {tuple(arr.shape)}"
        )
    if methods is None:
        methods = ["attribution"] if arr.shape[0] == 1 else [f"method_{i}" for i in range(arr.shape[0])]
    methods = check_tokens(list(methods), "methods")
    if len(methods) != arr.shape[0]:
        raise ViewValueError(f"methods: {len(methods)} names for {arr.shape[0]} attribution arrays")
    return methods, arr


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
    # Synced as `saliency_style`, not `style`: ipywidgets' front end (DOMWidgetView.setStyle) takes a DOMWidget's
    # `style` attribute for a StyleModel and calls create_view on it; a string there throws an uncaught
    # "Cannot read properties of undefined (reading 'then')" in JupyterLab / Notebook 7. `style` stays the Python name.
    saliency_style = traitlets.Unicode("minimal").tag(sync=True)
    selected_token = traitlets.Int(-1).tag(sync=True)
    causal = traitlets.Bool(True).tag(sync=True)
    # (n_methods, n_targets) relative completeness error; NaN for a method without one; (0, 0) when none is given
    completeness_error = Array(ndim=2).tag(sync=True, **array_serialization)
    # per method, what it was measured against ("zero, first token kept"); "" for methods without a baseline
    baselines = traitlets.List(traitlets.Unicode()).tag(sync=True)

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
        baselines: Mapping[str, str] | None = None,
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
        check_choice(style, _STYLES, "style")
        selected_token = check_index(selected_token, n, "selected_token")
        super().__init__(
            **tk,
            targets=tg,
            methods=names,
            attributions=attr,
            method=method,
            saliency_style=style,
            selected_token=selected_token,
            causal=causal,
            completeness_error=_completeness_rows(completeness_error, names, tg.size),
            baselines=_baseline_names(baselines, names),
            **kwargs,
        )

    @traitlets.validate("method")
    def _valid_method(self, proposal: Any) -> str:
        value = proposal["value"]
        if self.methods and value not in self.methods:
            raise ViewValueError(f"method: unknown method {value!r}; available: {list(self.methods)}")
        return value

    @traitlets.validate("saliency_style")
    def _valid_style(self, proposal: Any) -> str:
        return check_choice(proposal["value"], _STYLES, "style")

    @property
    def style(self) -> str:
        """"minimal" or "detailed" (synced to the front end as ``saliency_style``)."""
        return self.saliency_style

    @style.setter
    def style(self, value: str) -> None:
        self.saliency_style = value

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


def _baseline_names(baselines: Mapping[str, str] | None, names: list[str]) -> list[str]:
    """One description per method ("" where none is given); a key that names no method is an error."""
    baselines = dict(baselines or {})
    unknown = sorted(set(baselines) - set(names))
    if unknown:
        raise ViewValueError(f"baselines: unknown method(s) {unknown}; available: {names}")
    return [str(baselines.get(m, "")) for m in names]
