"""Common base of every view: the widget class, its JS bundle and the validation helpers.

Every view is an :class:`anywidget.AnyWidget` whose front end is ``ecco_widgets/static/<bundle>.js``
(``docs/view_contract.md``).  Here: :class:`EccoView` (``title``/``theme``, ``save_html``,
``export_state``, a short ``repr``), :class:`TokenView` (views of a token sequence), :class:`RowsView`
with :class:`RowSpec` (one row per factor / neuron / head over the tokens),  and ``check_*`` helpers raising :class:`ViewValueError` with a clear message.
Arrays (the ``Array`` trait and its wire forms) are in :mod:`ecco_widgets.views.arrays`, the built bundles in
:mod:`ecco_widgets.views.bundles`, the offline page in :mod:`ecco_widgets.views.export`.

Example:

>>> from ecco_widgets.views.base import check_labels
>>> check_labels(None, 2, "layer_labels", "L{}")
['L0', 'L1']
"""

from __future__ import annotations

import inspect
import os
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import anywidget
import numpy as np
import traitlets

from .arrays import Array, ViewValueError, array_serialization, array_to_base64, as_float_array, as_int_array
from .bundles import STATIC_DIR, bundle_path, read_bundle
from .export import save_html, to_html
from .hosts import HostDisplay

__all__ = [
    "STATIC_DIR", "EccoView", "RowSpec", "RowsView", "TokenView", "ViewValueError", "bundle_path", "check_choice",
    "check_index", "check_labels", "check_shape", "check_tokens", "check_topk", "read_bundle",
    "topk_traits",
]

_THEMES = ("auto", "light", "dark")

# --------------------------------------------------------------------------- validation helpers


def check_tokens(tokens: Any, name: str = "tokens", *, allow_empty: bool = False) -> list[str]:
    """Return ``tokens`` as a list of ``str``; raise a clear error otherwise.

    >>> check_tokens(("a", "b"))
    ['a', 'b']
    """
    if isinstance(tokens, (str, bytes)):
        raise ViewValueError(f"{name}: expected a list of strings, got a single string")
    if isinstance(tokens, np.ndarray):
        tokens = tokens.tolist()
    try:
        out = list(tokens)
    except TypeError as exc:
        raise ViewValueError(f"{name}: expected a list of strings, got {type(tokens).__name__}") from exc
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ViewValueError(f"{name}[{i}]: expected str, got {type(t).__name__} ({t!r})")
    if not out and not allow_empty:
        raise ViewValueError(f"{name}: at least one token is required")
    return [str(t) for t in out]


def check_labels(labels: Any, n: int, name: str, default: str) -> list[str]:
    """Labels list of length ``n``; ``None`` -> ``[default.format(i) ...]``."""
    if labels is None:
        return [default.format(i) for i in range(n)]
    out = check_tokens(labels, name, allow_empty=True)
    if len(out) != n:
        raise ViewValueError(f"{name}: expected {n} labels, got {len(out)}")
    return out


def check_shape(arr: np.ndarray, expected: Sequence[int | None], name: str, meaning: str = "") -> None:
    """Raise if ``arr.shape`` does not match ``expected`` (``None`` = any size)."""
    ok = arr.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, arr.shape))
    if not ok:
        want = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ")"
        extra = f" {meaning}" if meaning else ""
        raise ViewValueError(f"{name}: expected shape {want}{extra}, got {tuple(arr.shape)}")


def check_index(value: Any, n: int, name: str, *, allow_none: bool = True) -> int:
    """An int in ``[0, n)`` (or -1 for "none" when ``allow_none``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ViewValueError(f"{name}: expected an int, got {type(value).__name__}")
    value = int(value)
    lo = -1 if allow_none else 0
    if not lo <= value < n:
        rng = f"-1 (none) or 0..{n - 1}" if allow_none else f"0..{n - 1}"
        raise ViewValueError(f"{name}: {value} is out of range (expected {rng})")
    return value


def check_topk(topk_vocab: Sequence[str] | None, topk_index: Any, topk_probs: Any,
               lead_shape: tuple[int, ...]) -> dict[str, Any]:
    """Validate the optional (vocab, index, probs) top-k triple; empty arrays mean "none".

    Returns the traits ``topk_vocab``, ``topk_index`` (int32 ``lead_shape + (k,)``) and
    ``topk_probs`` (float32, same shape) as keyword arguments for a view.

    >>> t = check_topk([" a", " b"], [[1, 0]], [[0.6, 0.3]], (1,))
    >>> t["topk_index"].shape, t["topk_probs"].dtype.name
    ((1, 2), 'float32')
    """
    nd = len(lead_shape) + 1
    given = [x is not None for x in (topk_vocab, topk_index, topk_probs)]
    if not any(given):
        empty = (0,) * nd
        return {"topk_vocab": [], "topk_index": np.zeros(empty, np.int32), "topk_probs": np.zeros(empty, np.float32)}
    if not all(given):
        raise ViewValueError("topk_vocab, topk_index and topk_probs must be given together")
    vocab = check_tokens(topk_vocab, "topk_vocab", allow_empty=True)
    idx = as_int_array(topk_index, "topk_index").astype(np.int32)
    probs = as_float_array(topk_probs, "topk_probs").astype(np.float32)
    want = "(" + ", ".join(str(s) for s in lead_shape) + ", k)"
    if idx.ndim != nd or idx.shape[:-1] != lead_shape:
        raise ViewValueError(f"topk_index: expected shape {want}, got {tuple(idx.shape)}")
    if probs.shape != idx.shape:
        raise ViewValueError(f"topk_probs: shape {tuple(probs.shape)} differs from topk_index shape "
                             f"{tuple(idx.shape)}")
    if idx.size and (idx.min() < 0 or idx.max() >= len(vocab)):
        raise ViewValueError(f"topk_index: values must index topk_vocab (0..{len(vocab) - 1}), "
                             f"got range [{idx.min()}, {idx.max()}]")
    if probs.size and (probs.min() < 0 or probs.max() > 1.0 + 1e-4):
        raise ViewValueError("topk_probs: probabilities must be in [0, 1]")
    return {"topk_vocab": vocab, "topk_index": idx, "topk_probs": probs}


def topk_traits(ndim: int) -> tuple[traitlets.TraitType, traitlets.TraitType, traitlets.TraitType]:
    """The synced traits ``topk_vocab``, ``topk_index``, ``topk_probs`` (arrays of ``ndim`` dims) for check_topk."""
    return (traitlets.List(traitlets.Unicode()).tag(sync=True), Array(ndim=ndim).tag(sync=True, **array_serialization),
            Array(ndim=ndim).tag(sync=True, **array_serialization))


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    """``value`` if it is one of ``choices``.

    >>> check_choice("dark", ("light", "dark"), "theme")
    'dark'
    """
    if value not in choices:
        raise ViewValueError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


# --------------------------------------------------------------------------- base view


class EccoView(HostDisplay, anywidget.AnyWidget):
    """Base class of every view.

    Subclasses set ``_bundle`` (the name of ``ecco_widgets/static/<bundle>.js``), declare their synced traits
    and implement :meth:`_check` (relations between traits, e.g. shapes vs. tokens; raises :class:`ViewValueError`).
    """

    _bundle: str = ""

    title = traitlets.Unicode("").tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)
    #: "token", or "word" (tokens are words: tooltips list each word's pieces, from raw_tokens)
    unit = traitlets.Unicode("token").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        if not self._bundle:
            raise TypeError(f"{type(self).__name__} does not name a JS bundle (_bundle)")
        # `_esm` is the bundle's source, read per instance so a bundle rebuilt after import is picked up.
        self._esm = read_bundle(self._bundle)
        check_choice(kwargs.get("theme", "auto"), _THEMES, "theme")
        super().__init__(**kwargs)

    @classmethod
    def esm_path(cls) -> pathlib.Path:
        """Path of this view's JS bundle."""
        return bundle_path(cls._bundle)

    @traitlets.validate("theme")
    def _valid_theme(self, proposal: Any) -> str:
        return check_choice(proposal["value"], _THEMES, "theme")

    @traitlets.validate("unit")
    def _valid_unit(self, proposal: Any) -> str:
        return check_choice(proposal["value"], ("token", "word"), "unit")

    # -- state ---------------------------------------------------------------
    @classmethod
    def view_trait_names(cls) -> list[str]:
        """Names of the synced traits defined by ecco_widgets (not by ipywidgets)."""
        base = set(anywidget.AnyWidget.class_trait_names(sync=True))
        return [n for n in cls.class_trait_names(sync=True) if n not in base and not n.startswith("_")]

    def export_state(self) -> dict[str, Any]:
        """The view's state as plain JSON data, arrays as ``{"base64", "dtype", "shape"}``."""
        arrays = {name for name, trait in self.traits().items() if isinstance(trait, Array)}
        return {name: (array_to_base64 if name in arrays else _plain)(getattr(self, name))
                for name in self.view_trait_names()}

    def update(self, **values: Any) -> None:
        """Set several traits at once and re-validate the whole view."""
        with self.hold_trait_notifications():
            for k, v in values.items():
                alias = isinstance(getattr(type(self), k, None), property)  # e.g. SaliencyView.style
                if not (self.has_trait(k) or alias):
                    raise ViewValueError(f"{type(self).__name__} has no trait {k!r}")
                setattr(self, k, v)
            self._check()

    def _check(self) -> None:  # overridden
        pass

    # -- output (the page is assembled by views/export.py) --
    def save_html(self, path: str | os.PathLike[str], title: str | None = None) -> pathlib.Path:
        """Write this view as a self-contained offline HTML page; returns the path."""
        return save_html(self, path, title=title)

    def to_html(self, title: str | None = None) -> str:
        """This view as a self-contained offline HTML page (a string)."""
        return to_html(self, title=title)

    def save_svg(self, path: str | os.PathLike[str], theme: str | None = None) -> pathlib.Path:
        """Write this view as a static SVG figure (legend included), drawn by a headless Chromium.

        ``theme``: "light" or "dark" (default: the view's own, "auto" as light). Needs Chromium and playwright.
        """
        from .figure import render_svg

        out = pathlib.Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_svg(self, theme=theme), encoding="utf-8")
        return out

    def save_png(self, path: str | os.PathLike[str], theme: str | None = None, scale: float = 2) -> pathlib.Path:
        """Write this view as a PNG figure (``scale`` pixels per CSS pixel); as :meth:`save_svg`."""
        from .figure import render_png

        return render_png(self, path, theme=theme, scale=scale)

    def _repr_summary(self) -> str:
        parts = []
        for name in self.view_trait_names():
            value = getattr(self, name, None)
            if isinstance(value, np.ndarray) and value.size:
                parts.append(f"{name}={value.dtype.name}{list(value.shape)}")
            elif name in ("tokens",) and isinstance(value, list):
                parts.append(f"n_tokens={len(value)}")
        if self.title:
            parts.insert(0, f"title={self.title!r}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_summary()})"


def _plain(value: Any) -> Any:
    """Convert numpy scalars / tuples nested in trait values to JSON-able Python."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class TokenView(EccoView):
    """Base of the views that show a token sequence (``tokens``/``raw_tokens``/``n_input_tokens``)."""

    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    raw_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_input_tokens = traitlets.Int(0).tag(sync=True)
    #: chat turns ({"role", "start", "stop"} token ranges) and template special tokens (uint8 (n_tokens,) or empty)
    turns = traitlets.List(traitlets.Dict()).tag(sync=True)
    special = Array(ndim=1).tag(sync=True, **array_serialization)

    @staticmethod
    def _token_kwargs(tokens: Any, raw_tokens: Any, n_input_tokens: int | None) -> dict[str, Any]:
        toks = check_tokens(tokens, "tokens")
        raw = toks if raw_tokens is None else check_tokens(raw_tokens, "raw_tokens")
        if len(raw) != len(toks):
            raise ViewValueError(f"raw_tokens: has {len(raw)} entries but tokens has {len(toks)}")
        n_in = len(toks) if n_input_tokens is None else n_input_tokens
        if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)):
            raise ViewValueError(f"n_input_tokens: expected an int, got {type(n_in).__name__}")
        if not 0 <= int(n_in) <= len(toks):
            raise ViewValueError(f"n_input_tokens: {n_in} is out of range for {len(toks)} tokens "
                                 f"(expected 0..{len(toks)})")
        return {"tokens": list(toks), "raw_tokens": list(raw), "n_input_tokens": int(n_in)}

    def _check_tokens(self) -> None:
        from .chat_marks import check_special, check_turns

        self._token_kwargs(self.tokens, self.raw_tokens, self.n_input_tokens)
        check_turns(self.turns, len(self.tokens)), check_special(self.special, len(self.tokens))


# --------------------------------------------------------------------------- rows x tokens views


@dataclass(frozen=True)
class RowSpec:
    """The trait names of a view with one row per item over the tokens, and a selection.

    ``array`` holds ``(n_rows, n_tokens)`` floats (``(n_rows, n_tokens, n_tokens)`` when
    ``square``, where a 2-D array is taken as one row); ``row`` names ``n_rows`` in error
    messages; ``labels`` has one label per row (default ``default_label.format(i)``);
    ``selected`` is a selected row, -1 = none (a selected token when ``square``).

    >>> spec = RowSpec("factors", "n_components", "factor_labels", "Factor {}", "selected_factor")
    >>> spec.meaning(3)
    '(n_components, n_tokens=3)'
    """

    array: str
    row: str
    labels: str
    default_label: str
    selected: str
    square: bool = False

    def traits(self) -> tuple[traitlets.TraitType, traitlets.TraitType, traitlets.TraitType]:
        """The three synced traits, in the order (array, labels, selected)."""
        return (
            Array(ndim=3 if self.square else 2).tag(sync=True, **array_serialization),
            traitlets.List(traitlets.Unicode()).tag(sync=True),
            traitlets.Int(-1).tag(sync=True),
        )

    def meaning(self, n: int) -> str:
        """The expected shape in words, for error messages."""
        return f"({self.row}, n_tokens={n}, n_tokens={n})" if self.square else f"({self.row}, n_tokens={n})"

    def check(self, arr: np.ndarray, n: int, labels: Any, selected: Any) -> tuple[list[str], int]:
        """Validate ``arr`` against ``n`` tokens; return (labels, selected)."""
        check_shape(arr, (None, n, n) if self.square else (None, n), self.array, self.meaning(n))
        labels = check_labels(labels, arr.shape[0], self.labels, self.default_label)
        return labels, check_index(selected, n if self.square else arr.shape[0], self.selected)


class RowsView(TokenView):
    """Base of the views described by a :class:`RowSpec` (factors, neurons, attention heads).

    A subclass only declares its bundle, its spec and the spec's traits::

        class FactorExplorer(RowsView):
            _bundle = "factor_explorer"
            _rows = RowSpec("factors", "n_components", "factor_labels", "Factor {}", "selected_factor")
            factors, factor_labels, selected_factor = _rows.traits()

    and is called as ``FactorExplorer(tokens, factors, *, factor_labels=None,
    selected_factor=-1, n_input_tokens=None, raw_tokens=None, **traits)`` (its signature).
    """

    _rows: ClassVar[RowSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("_rows")
        if spec is None:
            return
        missing = [t for t in (spec.array, spec.labels, spec.selected) if t not in cls.__dict__]
        if missing:
            raise TypeError(f"{cls.__name__}: _rows names traits it does not declare: {missing}")
        P = inspect.Parameter
        kw = P.KEYWORD_ONLY
        cls.__signature__ = inspect.Signature([
            P("tokens", P.POSITIONAL_OR_KEYWORD, annotation="Sequence[str]"),
            P(spec.array, P.POSITIONAL_OR_KEYWORD, annotation="Any"),
            P(spec.labels, kw, default=None, annotation="Sequence[str] | None"),
            P(spec.selected, kw, default=-1, annotation="int"),
            P("n_input_tokens", kw, default=None, annotation="int | None"),
            P("raw_tokens", kw, default=None, annotation="Sequence[str] | None"),
            P("kwargs", P.VAR_KEYWORD, annotation="Any"),
        ])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        spec = self._rows
        bound = type(self).__signature__.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        tk = self._token_kwargs(a["tokens"], a["raw_tokens"], a["n_input_tokens"])
        arr = as_float_array(a[spec.array], spec.array)
        if spec.square and arr.ndim == 2:
            arr = arr[None]
        labels, selected = spec.check(arr, len(tk["tokens"]), a[spec.labels], a[spec.selected])
        traits = {spec.array: arr, spec.labels: labels, spec.selected: selected}
        super().__init__(**tk, **traits, **a["kwargs"])

    def _check(self) -> None:
        self._check_tokens()
        spec = self._rows
        arr = getattr(self, spec.array)
        spec.check(arr, len(self.tokens), getattr(self, spec.labels), getattr(self, spec.selected))
