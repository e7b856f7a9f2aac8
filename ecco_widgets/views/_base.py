"""Common base for every ecco_widgets view.

Every view is an :class:`anywidget.AnyWidget` whose front-end lives in
``ecco_widgets/static/<bundle>.js`` (see ``docs/view_contract.md``).  This module
holds the pieces shared by all views:

* :class:`EccoView`, the base widget (``title``/``theme`` traits, ``save_html``,
  ``export_state`` and a short ``repr``);
* :class:`Array`, a trait holding a numpy array that is sent to the browser as
  ``{"view": memoryview, "dtype": str, "shape": [...]}`` (a binary buffer, no JSON list);
* validation helpers that raise :class:`ViewValueError` (a ``ValueError``) with a clear message.
"""

from __future__ import annotations

import base64
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import anywidget
import numpy as np
import traitlets

__all__ = [
    "ALLOWED_DTYPES",
    "STATIC_DIR",
    "Array",
    "EccoView",
    "ViewValueError",
    "array_from_json",
    "array_to_base64",
    "array_to_json",
    "bundle_path",
    "normalize_array",
]

#: Folder holding the built JS bundles.
STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"

#: dtypes the JS side can decode (docs/view_contract.md, "Arrays").
ALLOWED_DTYPES = ("float32", "float64", "int32", "uint32", "int16", "uint16", "int8", "uint8")

_THEMES = ("auto", "light", "dark")


class ViewValueError(ValueError, traitlets.TraitError):
    """Invalid data given to a view.

    A ``ValueError`` (what callers catch) that is also a ``traitlets.TraitError``
    (what traitlets machinery expects from a validator).
    """


# --------------------------------------------------------------------------- arrays


def normalize_array(value: Any, name: str = "array") -> np.ndarray:
    """Return ``value`` as a C-contiguous little-endian array with a contract dtype.

    int64/uint64 -> int32/uint32 (error if the values do not fit), float16 -> float32,
    bool -> uint8.  Any other dtype (complex, object, strings, datetimes, ...) raises
    :class:`ViewValueError`.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and friends
        raise ViewValueError(f"{name}: cannot convert to a numpy array ({exc})") from exc
    kind = arr.dtype.kind
    if kind == "b":
        arr = arr.astype(np.uint8)
    elif kind in "iu":
        arr = arr.astype(_smallest_int_dtype(arr, name))
    elif kind == "f" and arr.dtype.itemsize == 2:
        arr = arr.astype(np.float32)
    elif kind == "f" and arr.dtype.itemsize > 8:  # float128
        arr = arr.astype(np.float64)
    if arr.dtype.newbyteorder("=").name not in ALLOWED_DTYPES:
        raise ViewValueError(
            f"{name}: dtype {arr.dtype} is not supported; use one of {', '.join(ALLOWED_DTYPES)}"
        )
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _little_endian()):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    # C-contiguous, little-endian, native name ("float32", not ">f4")
    arr = arr.astype(np.dtype(arr.dtype.name).newbyteorder("<"), copy=False)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
    return arr


def _smallest_int_dtype(arr: np.ndarray, name: str) -> np.dtype:
    """The narrowest contract integer dtype that holds every value (ranks < 256 travel as 1 byte each).

    This keeps binary payloads several times smaller than the JSON lists they replace.
    """
    if not arr.size:
        return np.dtype(np.int32)
    lo, hi = int(arr.min()), int(arr.max())
    for candidate in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return np.dtype(candidate)
    raise ViewValueError(f"{name}: values in [{lo}, {hi}] do not fit in a 32-bit integer")


def _little_endian() -> bool:
    import sys

    return sys.byteorder == "little"


def array_to_json(value: Any, widget: Any = None) -> dict[str, Any] | None:
    """Serialize an array for the widget comm: ``{"view": memoryview, "dtype", "shape"}``.

    ipywidgets moves the memoryview into a binary buffer; the JS side receives a
    ``DataView``.  ``None`` stays ``None``.
    """
    if value is None:
        return None
    arr = normalize_array(value)
    # memoryview of the raw bytes (format "B") so every consumer sees plain bytes.
    return {
        "view": memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b""),
        "dtype": arr.dtype.name,
        "shape": [int(s) for s in arr.shape],
    }


def array_to_base64(value: Any) -> dict[str, Any] | None:
    """Serialize an array for the offline export: ``{"base64": str, "dtype", "shape"}``."""
    if value is None:
        return None
    arr = normalize_array(value)
    return {
        "base64": base64.b64encode(arr.tobytes(order="C")).decode("ascii"),
        "dtype": arr.dtype.name,
        "shape": [int(s) for s in arr.shape],
    }


def array_from_json(value: Any, widget: Any = None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json` / :func:`array_to_base64`."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value
    dtype = np.dtype(value["dtype"]).newbyteorder("<")
    shape = tuple(int(s) for s in value["shape"])
    if "base64" in value:
        raw = base64.b64decode(value["base64"])
    else:
        raw = bytes(value["view"])
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


class Array(traitlets.TraitType):
    """A numpy-array trait that is synced as a binary buffer.

    ``ndim`` (optional) is checked on assignment; values are normalized with
    :func:`normalize_array`.  Use ``Array(...).tag(sync=True, **array_serialization)``.
    """

    info_text = "a numpy array"
    default_value = None

    def __init__(self, default_value: Any = None, ndim: int | None = None, **kwargs: Any) -> None:
        self.ndim = ndim
        if default_value is None and ndim is not None:
            default_value = np.zeros((0,) * ndim, dtype=np.float32)
        super().__init__(default_value=default_value, **kwargs)

    def validate(self, obj: Any, value: Any) -> np.ndarray | None:
        if value is None:
            if self.allow_none:
                return None
            raise ViewValueError(f"{self.name}: an array is required")
        arr = normalize_array(value, name=self.name or "array")
        if self.ndim is not None and arr.ndim != self.ndim:
            raise ViewValueError(
                f"{self.name}: expected a {self.ndim}-D array, got shape {tuple(arr.shape)}"
            )
        return arr

    def make_dynamic_default(self) -> np.ndarray | None:  # fresh array per instance
        dv = self.default_value
        return None if dv is None else np.array(dv, copy=True)


array_serialization = {"to_json": array_to_json, "from_json": array_from_json}


# --------------------------------------------------------------------------- validation helpers


def check_tokens(tokens: Any, name: str = "tokens", *, allow_empty: bool = False) -> list[str]:
    """Return ``tokens`` as a list of ``str``; raise a clear error otherwise."""
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


def check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise ViewValueError(f"{name}: contains NaN or infinite values")


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


def as_int_array(value: Any, name: str) -> np.ndarray:
    """An integer array (floats with integral values are accepted)."""
    arr = normalize_array(value, name)
    if arr.dtype.kind == "f":
        if arr.size and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ViewValueError(f"{name}: expected integer values")
        arr = arr.astype(np.int32)
    return arr


def as_float_array(value: Any, name: str) -> np.ndarray:
    """A float32 array (float64 is kept if given)."""
    arr = normalize_array(value, name)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    check_finite(arr, name)
    return arr


def bundle_path(bundle: str) -> pathlib.Path:
    return STATIC_DIR / f"{bundle}.js"


_ESM_CACHE: dict[str, tuple[float, str]] = {}


def _read_bundle(bundle: str) -> str:
    path = bundle_path(bundle)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise FileNotFoundError(
            f"JS bundle {path} is missing; build the front-end first (`npm --prefix js run build`)"
        ) from None
    cached = _ESM_CACHE.get(str(path))
    if cached and cached[0] == mtime:
        return cached[1]
    text = path.read_text(encoding="utf-8")
    _ESM_CACHE[str(path)] = (mtime, text)
    return text


# --------------------------------------------------------------------------- base view


class EccoView(anywidget.AnyWidget):
    """Base class of every view.

    Subclasses set ``_bundle`` (the name of ``ecco_widgets/static/<bundle>.js``) and
    declare their synced traits.  They implement :meth:`_check` to validate the
    relations between traits (shapes vs. tokens) and raise :class:`ViewValueError`.
    """

    _bundle: str = ""

    title = traitlets.Unicode("").tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        if not self._bundle:
            raise TypeError(f"{type(self).__name__} does not name a JS bundle (_bundle)")
        # `_esm` is the bundle's source (anywidget reads str(value)); resolved per
        # instance so a bundle rebuilt after import is picked up.
        self._esm = _read_bundle(self._bundle)
        theme = kwargs.get("theme", "auto")
        if theme not in _THEMES:
            raise ViewValueError(f"theme: {theme!r} is not one of {', '.join(_THEMES)}")
        super().__init__(**kwargs)

    # -- paths ---------------------------------------------------------------
    @classmethod
    def esm_path(cls) -> pathlib.Path:
        """Path of this view's JS bundle."""
        return bundle_path(cls._bundle)

    @traitlets.validate("theme")
    def _valid_theme(self, proposal: Any) -> str:
        if proposal["value"] not in _THEMES:
            raise ViewValueError(f"theme: {proposal['value']!r} is not one of {', '.join(_THEMES)}")
        return proposal["value"]

    # -- state ---------------------------------------------------------------
    @classmethod
    def view_trait_names(cls) -> list[str]:
        """Names of the synced traits defined by ecco_widgets (not by ipywidgets)."""
        base = set(anywidget.AnyWidget.class_trait_names(sync=True))
        return [n for n in cls.class_trait_names(sync=True) if n not in base and not n.startswith("_")]

    def export_state(self) -> dict[str, Any]:
        """The view's state as plain JSON data, arrays as ``{"base64", "dtype", "shape"}``."""
        state: dict[str, Any] = {}
        for name in self.view_trait_names():
            value = getattr(self, name)
            trait = self.traits()[name]
            if isinstance(trait, Array):
                state[name] = array_to_base64(value)
            else:
                state[name] = _plain(value)
        return state

    def update(self, **values: Any) -> None:
        """Set several traits at once and re-validate the whole view."""
        with self.hold_trait_notifications():
            for k, v in values.items():
                if not self.has_trait(k):
                    raise ViewValueError(f"{type(self).__name__} has no trait {k!r}")
                setattr(self, k, v)
            self._check()

    def _check(self) -> None:  # overridden
        pass

    # -- output --------------------------------------------------------------
    def save_html(self, path: str | os.PathLike[str], title: str | None = None) -> pathlib.Path:
        """Write this view as a self-contained offline HTML page; returns the path."""
        from ..export import save_html

        return save_html(self, path, title=title)

    def to_html(self, title: str | None = None) -> str:
        """This view as a self-contained offline HTML page (a string)."""
        from ..export import to_html

        return to_html(self, title=title)

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


class TokenView(EccoView):
    """Base of the views that show a token sequence (``tokens``/``raw_tokens``/``n_input_tokens``)."""

    _bundle = ""

    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    raw_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_input_tokens = traitlets.Int(0).tag(sync=True)

    @staticmethod
    def _token_kwargs(tokens: Any, raw_tokens: Any, n_input_tokens: int | None) -> dict[str, Any]:
        toks = check_tokens(tokens, "tokens")
        raw = toks if raw_tokens is None else check_tokens(raw_tokens, "raw_tokens")
        if len(raw) != len(toks):
            raise ViewValueError(
                f"raw_tokens: has {len(raw)} entries but tokens has {len(toks)}"
            )
        n_in = len(toks) if n_input_tokens is None else n_input_tokens
        if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)):
            raise ViewValueError(f"n_input_tokens: expected an int, got {type(n_in).__name__}")
        if not 0 <= int(n_in) <= len(toks):
            raise ViewValueError(
                f"n_input_tokens: {n_in} is out of range for {len(toks)} tokens (expected 0..{len(toks)})"
            )
        return {"tokens": list(toks), "raw_tokens": list(raw), "n_input_tokens": int(n_in)}

    def _check_tokens(self) -> None:
        self._token_kwargs(self.tokens, self.raw_tokens, self.n_input_tokens)
