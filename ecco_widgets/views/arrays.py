"""Numpy arrays as view traits: the dtypes the JS side reads and the two wire forms.

A view's arrays travel as ``{"view": memoryview, "dtype": str, "shape": [...]}`` in a live
notebook (a binary buffer, no JSON list) and as ``{"base64": str, "dtype", "shape"}`` in the
offline export (``docs/view_contract.md``, "Arrays").  This is the lowest layer of ``views/``:
it imports nothing from ecco_widgets, and :class:`ViewValueError` is defined here.

Example:

>>> import numpy as np
>>> from ecco_widgets.views.arrays import array_from_json, array_to_json
>>> out = array_to_json(np.array([[3, 1], [250, 2]], dtype=np.int64))
>>> out["dtype"], out["shape"]
('uint8', [2, 2])
>>> array_from_json(out).tolist()
[[3, 1], [250, 2]]
"""

from __future__ import annotations

import base64
import sys
from typing import Any

import numpy as np
import traitlets

__all__ = [
    "ALLOWED_DTYPES",
    "Array",
    "ViewValueError",
    "array_from_json",
    "array_serialization",
    "array_to_base64",
    "array_to_json",
    "as_float_array",
    "as_int_array",
    "check_finite",
    "normalize_array",
]

#: dtypes the JS side can decode (docs/view_contract.md, "Arrays").
ALLOWED_DTYPES = ("float32", "float64", "int32", "uint32", "int16", "uint16", "int8", "uint8")


class ViewValueError(ValueError, traitlets.TraitError):
    """Invalid data given to a view.

    A ``ValueError`` (what callers catch) that is also a ``traitlets.TraitError``
    (what traitlets machinery expects from a validator).

    >>> issubclass(ViewValueError, ValueError)
    True
    """


def normalize_array(value: Any, name: str = "array") -> np.ndarray:
    """Return ``value`` as a C-contiguous little-endian array with a contract dtype.

    int64/uint64 -> the narrowest integer dtype that holds the values (error if they do not
    fit in 32 bits), float16 -> float32, bool -> uint8.  Any other dtype (complex, object,
    strings, datetimes, ...) raises :class:`ViewValueError`.

    >>> normalize_array(np.ones(2, dtype=">f2")).dtype.str
    '<f4'
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
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder != "little"):
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


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise if a float array holds NaN or infinities."""
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        raise ViewValueError(f"{name}: contains NaN or infinite values")


def as_int_array(value: Any, name: str) -> np.ndarray:
    """An integer array (floats with integral values are accepted).

    >>> as_int_array([1.0, 2.0], "ranks").dtype.kind
    'i'
    """
    arr = normalize_array(value, name)
    if arr.dtype.kind == "f":
        if arr.size and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ViewValueError(f"{name}: expected integer values")
        arr = arr.astype(np.int32)
    return arr


def as_float_array(value: Any, name: str) -> np.ndarray:
    """A finite float32 array (float64 is kept if given).

    >>> as_float_array([1, 2], "x").dtype.name
    'float32'
    """
    arr = normalize_array(value, name)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    check_finite(arr, name)
    return arr


# --------------------------------------------------------------------------- wire forms


def array_to_json(value: Any, widget: Any = None) -> dict[str, Any] | None:
    """Serialize an array for the widget comm: ``{"view": memoryview, "dtype", "shape"}``.

    ipywidgets moves the memoryview into a binary buffer; the JS side receives a
    ``DataView``.  ``None`` stays ``None``.  A view whose host loses buffers (``widget._ew_wire == "base64"``,
    ``views/hosts.py``) gets :func:`array_to_base64`'s form instead.
    """
    if value is None:
        return None
    if getattr(widget, "_ew_wire", None) == "base64":
        return array_to_base64(value)
    arr = normalize_array(value)
    # memoryview of the raw bytes (format "B") so every consumer sees plain bytes.
    return {
        "view": memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b""),
        "dtype": arr.dtype.name,
        "shape": [int(s) for s in arr.shape],
    }


def array_to_base64(value: Any) -> dict[str, Any] | None:
    """Serialize an array for the offline export: ``{"base64": str, "dtype", "shape"}``.

    >>> array_to_base64(np.array([1], np.uint8))
    {'base64': 'AQ==', 'dtype': 'uint8', 'shape': [1]}
    """
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
    :func:`normalize_array`.  Use ``Array(ndim=2).tag(sync=True, **array_serialization)``.
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


#: ``to_json`` / ``from_json`` for ``Array(...).tag(sync=True, **array_serialization)``.
array_serialization = {"to_json": array_to_json, "from_json": array_from_json}
