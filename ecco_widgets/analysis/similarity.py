"""Representation similarity: CKA, CCA, SVCCA and PWCCA between two sets of activations of the same samples.

Every function takes ``x`` (n_samples, n_features_x) and ``y`` (n_samples, n_features_y): row i of both is the same
sample (e.g. the same token seen by two layers, or by two models). Features are centred (column means removed)
first. Computation is in float64; numpy arrays and torch tensors are accepted.

- :func:`cka`: centred kernel alignment (Kornblith et al. 2019), linear or RBF kernel. 1 for identical
  representations, invariant to orthogonal transforms and isotropic scaling, not to arbitrary invertible maps.
- :func:`cca`: canonical correlation analysis. Returns a :class:`CCAResult`, a float equal to the mean canonical
  correlation that also carries every correlation and the canonical weights. Invariant to any invertible linear
  map of either side (so ``y = x @ A`` gives 1).
- :func:`svcca`: SVCCA (Raghu et al. 2017): keep the top singular directions of each side that explain ``keep`` of
  its variance, then CCA.
- :func:`pwcca`: projection-weighted CCA (Morcos et al. 2018): a weighted mean of the canonical correlations, each
  weighted by how much of the representation its canonical variate accounts for.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 8))
>>> round(cka(x, 3.0 * x @ np.linalg.qr(rng.normal(size=(8, 8)))[0]), 6)
1.0
>>> round(float(cca(x, x @ rng.normal(size=(8, 5)))), 6)
1.0
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["CCAResult", "cca", "cka", "pwcca", "svcca"]

#: singular values below this fraction of the largest are treated as zero (rank-deficient features)
RANK_TOL = 1e-10


class CCAResult(float):
    """The mean canonical correlation (use it as a float) with the details of the CCA.

    correlations: float64 (k,), descending, in [0, 1]; k = min(rank of x, rank of y).
    x_weights: float64 (n_features_x, k) and y_weights: (n_features_y, k): canonical weights; the canonical
    variates ``(x - x_mean) @ x_weights`` have unit norm, are mutually orthogonal and column i of the x variates
    correlates with column i of the y variates by ``correlations[i]``.
    x_mean, y_mean: the column means that were removed. For SVCCA the weights act on the reduced data and
    ``x_dims`` / ``y_dims`` say how many singular directions were kept. For PWCCA ``weights`` are the projection
    weights (summing to 1) and ``float(result)`` is the weighted mean.
    """

    correlations: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    details: dict[str, Any]

    def __new__(cls, value: float, correlations: np.ndarray, x_weights: np.ndarray, y_weights: np.ndarray,
                x_mean: np.ndarray, y_mean: np.ndarray, **details: Any) -> "CCAResult":
        result = super().__new__(cls, value)
        result.correlations = correlations
        result.x_weights = x_weights
        result.y_weights = y_weights
        result.x_mean = x_mean
        result.y_mean = y_mean
        result.details = details
        return result

    @property
    def mean(self) -> float:
        """The mean canonical correlation (also the value of this float for plain CCA and SVCCA)."""
        return float(np.mean(self.correlations)) if len(self.correlations) else 0.0

    def __getattr__(self, name: str) -> Any:
        details = self.__dict__.get("details", {})
        if name in details:
            return details[name]
        raise AttributeError(name)

    def transform(self, x=None, y=None):
        """Canonical variates of new data: ``(x - x_mean) @ x_weights`` and/or the same for y (None skips a side)."""
        tx = None if x is None else (_as_2d(x, "x") - self.x_mean) @ self.x_weights
        ty = None if y is None else (_as_2d(y, "y") - self.y_mean) @ self.y_weights
        if x is None:
            return ty
        if y is None:
            return tx
        return tx, ty

    def __repr__(self) -> str:
        return f"CCAResult({float(self):.6f}, k={len(self.correlations)})"

    def __reduce__(self):
        return (_rebuild, (float(self), self.correlations, self.x_weights, self.y_weights, self.x_mean, self.y_mean,
                           self.details))


def _rebuild(value, correlations, x_weights, y_weights, x_mean, y_mean, details):
    return CCAResult(value, correlations, x_weights, y_weights, x_mean, y_mean, **details)


# ----- input checks -----
def _as_2d(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().float().cpu().numpy()
    try:
        array = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"{name} must be a numeric array (n_samples, n_features): {error}") from None
    if array.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_samples, n_features); got shape {array.shape}. "
                         "For one feature use a column, e.g. x[:, None].")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contains NaN or infinite values.")
    return array


def _pair(x, y, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    if x.shape[0] != y.shape[0]:
        raise InputError(f"x and y must hold the same samples in the same order: x has {x.shape[0]} rows (samples), "
                         f"y has {y.shape[0]}.")
    if x.shape[0] < min_samples:
        raise InputError(f"Too few samples: got {x.shape[0]}, need at least {min_samples}.")
    if x.shape[1] == 0 or y.shape[1] == 0:
        raise InputError(f"x and y need at least one feature each; got shapes {x.shape} and {y.shape}.")
    return x, y


def _centred(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = a.mean(axis=0)
    return a - mean, mean


def _require_variance(a: np.ndarray, name: str) -> None:
    if not np.any(np.abs(a) > 0):
        raise InputError(f"{name} is constant over the samples (no variance after centring); similarity is undefined.")


# ----- CKA -----
def _linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    n, dx = x.shape
    dy = y.shape[1]
    if n < max(dx, dy):  # the n x n Gram form is cheaper
        kx, ky = x @ x.T, y @ y.T
        cross = np.sum(kx * ky)
        return float(cross / (np.linalg.norm(kx) * np.linalg.norm(ky)))
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _rbf_gram(a: np.ndarray, threshold: float) -> np.ndarray:
    """exp(-d^2 / (2 threshold^2 median(d^2))), the bandwidth rule of Kornblith et al.'s reference code."""
    dots = a @ a.T
    norms = np.diag(dots)
    sq = np.maximum(norms[:, None] + norms[None, :] - 2 * dots, 0.0)
    median = np.median(sq)
    if median <= 0:
        raise InputError("More than half of the pairwise distances are 0 (repeated samples); the RBF bandwidth "
                         "(median distance) is undefined. Use kernel='linear' or drop the repeats.")
    return np.exp(-sq / (2 * threshold**2 * median))


def _centre_gram(k: np.ndarray) -> np.ndarray:
    return k - k.mean(axis=0, keepdims=True) - k.mean(axis=1, keepdims=True) + k.mean()


def cka(x, y, kernel: str = "linear", threshold: float = 1.0) -> float:
    """Centred kernel alignment between x (n, d_x) and y (n, d_y), in [0, 1].

    kernel="linear": ||y_c^T x_c||_F^2 / (||x_c^T x_c||_F ||y_c^T y_c||_F) with column-centred x_c, y_c.
    kernel="rbf": HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with Gaussian kernels whose bandwidth is
    ``threshold`` x the median pairwise distance (squared: sigma^2 = threshold^2 median(d^2)).
    Example: ``cka(out.hidden_states[3], out.hidden_states[4])``.
    """
    x, y = _pair(x, y, min_samples=2)
    xc, _ = _centred(x)
    yc, _ = _centred(y)
    _require_variance(xc, "x")
    _require_variance(yc, "y")
    if kernel == "linear":
        return min(1.0, max(0.0, _linear_cka(xc, yc)))
    if kernel == "rbf":
        if not threshold > 0:
            raise InputError(f"threshold must be > 0, got {threshold!r}.")
        kx = _centre_gram(_rbf_gram(xc, threshold))
        ky = _centre_gram(_rbf_gram(yc, threshold))
        value = np.sum(kx * ky) / (np.linalg.norm(kx) * np.linalg.norm(ky))
        return float(min(1.0, max(0.0, value)))
    raise InputError(f"kernel must be 'linear' or 'rbf', got {kernel!r}.")


# ----- CCA -----
def _whiten(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis u (n, r) of the column space of centred ``a`` and the map w (d, r) with a @ w = u."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    keep = s > RANK_TOL * (s[0] if len(s) else 0.0)
    return u[:, keep], vt[keep].T / s[keep]


def _cca_centred(xc: np.ndarray, yc: np.ndarray, x_mean: np.ndarray, y_mean: np.ndarray,
                 what: str = "cca") -> CCAResult:
    n, dx = xc.shape
    dy = yc.shape[1]
    if n <= max(dx, dy):
        raise InputError(
            f"Too few samples for CCA: {n} samples for {dx} and {dy} features. CCA needs more samples than features "
            "on each side (else the correlations are trivially 1); use more tokens, fewer features, or "
            "svcca(x, y, keep=...) to reduce the dimensions first."
        )
    _require_variance(xc, "x")
    _require_variance(yc, "y")
    ux, wx = _whiten(xc)
    uy, wy = _whiten(yc)
    forced = ux.shape[1] + uy.shape[1] - (n - 1)
    if forced > 0:
        warnings.warn(
            f"{what}: with {n} samples, ranks {ux.shape[1]} and {uy.shape[1]} force {forced} canonical "
            "correlation(s) to 1. Use more samples or fewer dimensions (svcca).", RuntimeWarning, stacklevel=3)
    a, rho, bt = np.linalg.svd(ux.T @ uy, full_matrices=False)
    k = len(rho)
    rho = np.clip(rho, 0.0, 1.0)
    x_weights = wx @ a[:, :k]
    y_weights = wy @ bt[:k].T
    return CCAResult(float(np.mean(rho)) if k else 0.0, rho, x_weights, y_weights, x_mean, y_mean)


def cca(x, y) -> CCAResult:
    """Canonical correlation analysis of x (n, d_x) and y (n, d_y).

    Returns a CCAResult: a float equal to the mean canonical correlation, with ``.correlations`` (descending),
    ``.x_weights``, ``.y_weights`` and ``.transform``. Needs n_samples > n_features on each side.
    Route: orthonormal bases of the centred column spaces by SVD; the canonical correlations are the singular
    values of their product (the cosines of the principal angles between the two subspaces).
    """
    x, y = _pair(x, y, min_samples=2)
    xc, x_mean = _centred(x)
    yc, y_mean = _centred(y)
    return _cca_centred(xc, yc, x_mean, y_mean)


def _reduce(a: np.ndarray, keep: float | int, name: str) -> tuple[np.ndarray, int]:
    """Project centred ``a`` onto its top singular directions: those explaining ``keep`` of the variance (a float
    in (0, 1]) or the top ``keep`` of them (an int >= 1)."""
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    variance = s**2
    total = variance.sum()
    if isinstance(keep, (bool, np.bool_)):
        raise InputError(f"keep must be a fraction of variance in (0, 1] or a number of dimensions; got {keep!r}.")
    if isinstance(keep, (int, np.integer)) and keep >= 1:
        dims = min(int(keep), int((s > RANK_TOL * s[0]).sum()))
    elif isinstance(keep, (float, np.floating)) and 0 < keep <= 1:
        dims = int(np.searchsorted(np.cumsum(variance) / total, keep - 1e-12) + 1)
        dims = min(dims, len(s))
    else:
        raise InputError(f"keep must be a fraction of variance in (0, 1] or a number of dimensions >= 1; got "
                         f"{keep!r}.")
    return u[:, :dims] * s[:dims], dims


def svcca(x, y, keep: float | int = 0.99) -> CCAResult:
    """SVCCA: reduce each side to the singular directions explaining ``keep`` of its variance, then CCA.

    keep: fraction of variance in (0, 1] (0.99 as in Raghu et al. 2017), or an int number of directions. Returns a
    CCAResult (the mean canonical correlation of the reduced data) with ``x_dims`` and ``y_dims`` kept; its
    weights act on the reduced coordinates.
    """
    x, y = _pair(x, y, min_samples=2)
    xc, x_mean = _centred(x)
    yc, y_mean = _centred(y)
    _require_variance(xc, "x")
    _require_variance(yc, "y")
    xr, dx = _reduce(xc, keep, "x")
    yr, dy = _reduce(yc, keep, "y")
    result = _cca_centred(xr, yr, np.zeros(dx), np.zeros(dy), what="svcca")
    return CCAResult(float(result), result.correlations, result.x_weights, result.y_weights, result.x_mean,
                     result.y_mean, x_dims=dx, y_dims=dy)


def pwcca(x, y, weights_from: str = "smaller") -> CCAResult:
    """Projection-weighted CCA (Morcos, Raghu & Bengio 2018).

    With canonical variates h_i (unit-norm columns of ``(x - mean) @ x_weights``) the weight of correlation rho_i
    is alpha_i = sum_j |<h_i, x_j>| over the centred features x_j of x, normalised to sum 1; the result is
    sum_i alpha_i rho_i. ``weights_from``: "x", "y", or "smaller" (the side with fewer non-degenerate dimensions,
    x on a tie, as in the authors' reference code). Not symmetric in general. Returns a CCAResult whose value is the
    weighted mean, with ``.weights`` and ``.weights_from`` ("x" or "y").
    """
    if weights_from not in ("x", "y", "smaller"):
        raise InputError(f"weights_from must be 'x', 'y' or 'smaller', got {weights_from!r}.")
    x, y = _pair(x, y, min_samples=2)
    xc, x_mean = _centred(x)
    yc, y_mean = _centred(y)
    result = _cca_centred(xc, yc, x_mean, y_mean, what="pwcca")
    side = weights_from
    if side == "smaller":
        rank_x, rank_y = np.linalg.matrix_rank(xc), np.linalg.matrix_rank(yc)
        side = "x" if rank_x <= rank_y else "y"
    data, w = (xc, result.x_weights) if side == "x" else (yc, result.y_weights)
    variates = data @ w  # (n, k), orthonormal columns
    alpha = np.abs(variates.T @ data).sum(axis=1)
    alpha = alpha / alpha.sum()
    value = float(np.sum(alpha * result.correlations))
    return CCAResult(value, result.correlations, result.x_weights, result.y_weights, x_mean, y_mean,
                     weights=alpha, weights_from=side)
