"""Neuron-activation analyses: NMF factors over the tokens, the strongest neurons at a token, neuron heatmaps.

The activations are the MLP activations captured in the single hooked forward pass (``activations=True`` or a list of
layers in ``lm.analyze``/``lm.generate``): for each kept layer, the input of the block's MLP down projection, i.e.
``act(fc(x))`` or ``act(gate(x)) * up(x)`` for gated MLPs, stored in ``out.activations`` with shape
(n_layers_kept, n_tokens, n_neurons) and ``out.activation_layers`` naming the layers in numeric order.

These functions read any object with the fields of :class:`ActivationSource` (an Output) and import no result
or view; ``out.run_nmf(...)`` wraps :func:`factorize` into a ``results.NMFResult`` with its view.

>>> import numpy as np
>>> x = np.random.default_rng(0).random((6, 10), dtype=np.float32)   # (n_tokens, n_neurons)
>>> nmf = factorize(x.copy(), n_components=3)
>>> nmf.factors.shape, nmf.components.shape, nmf.clipped_fraction
((3, 6), (3, 10), 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from ..errors import InputError, NotAvailableError
from ..progress import ticking


#: Options passed to scikit-learn's NMF unless the caller overrides them. SVD-based init (nndsvda) with the
#: coordinate-descent solver: on SmolLM2 activations it needs 26 iterations for 53 tokens x 18k neurons and 220 for
#: 1,000 tokens x 46k neurons, where Ecco's init="random" needed 87 and stopped at its 500 limit, and the "mu"
#: solver was slower per result. max_iter=500 (scikit-learn's default 200 stops short of convergence on the larger
#: input). tol=1e-3 halves the iterations on the large input (factors within cosine 0.998) but stops after 6 on the
#: small one (cosine 0.976): pass tol=1e-3 for speed. Measured by benchmarks/bench_activations.py.
DEFAULT_NMF_OPTIONS: dict[str, Any] = {"init": "nndsvda", "solver": "cd", "max_iter": 500, "tol": 1e-4,
                                       "random_state": 0}


class ActivationSource(Protocol):
    """What the activation analyses read (an Output): activations float (n_layers_kept, n_tokens, n_neurons), the
    model layers they come from, the number of model layers and tokens, and position normalisation."""

    activations: np.ndarray | None
    activation_layers: list[int]
    ranks: np.ndarray

    @property
    def n_layers(self) -> int: ...

    @property
    def n_tokens(self) -> int: ...

    def _position(self, position: int, n_positions: int | None = None) -> int: ...


@dataclass
class Factorization:
    """X ≈ factors.T @ components of a clipped activation matrix X (n_tokens_used, n_neurons_used).

    factors: float32 (n_components, n_tokens_used) (sklearn's W, transposed); components: float32 (n_components,
    n_neurons_used) (sklearn's H); reconstruction_error: ||X - factors.T @ components||_F; clipped_fraction: share of
    the input values that were negative and clipped to 0; options: the NMF options used.
    """

    factors: np.ndarray
    components: np.ndarray
    reconstruction_error: float
    clipped_fraction: float
    n_iter: int
    options: dict[str, Any] = field(default_factory=dict)


# ----- helpers -----
def _require_activations(out: ActivationSource) -> np.ndarray:
    if out.activations is None:
        raise NotAvailableError("No activations were captured; pass activations=True (or a list of layers) to "
                                "lm.analyze or lm.generate.")
    return out.activations


def _captured_layers(out: ActivationSource) -> list[int]:
    acts = _require_activations(out)
    layers = [int(layer) for layer in out.activation_layers] or list(range(acts.shape[0]))
    if len(layers) != acts.shape[0]:
        raise NotAvailableError(f"activation_layers names {len(layers)} layers but activations hold "
                                f"{acts.shape[0]}; the output is inconsistent.")
    return layers


def _layer_row(out: ActivationSource, layer: Any) -> int:
    """Index into out.activations of model layer ``layer`` (negative counts from the last model layer)."""
    captured = _captured_layers(out)
    n_layers = out.n_layers if out.ranks is not None and out.ranks.ndim == 2 else max(captured) + 1
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n_layers <= layer < n_layers:
        raise InputError(f"Layer {layer!r} does not exist: the model has {n_layers} layers (0..{n_layers - 1}).")
    index = int(layer) % n_layers
    if index not in captured:
        raise NotAvailableError(
            f"Layer {index} was not captured (captured layers: {', '.join(map(str, captured))}); analyze with "
            f"activations=True or a list of layers that includes {index}."
        )
    return captured.index(index)


def _positions(out: ActivationSource, positions: Sequence[int] | slice | None) -> np.ndarray:
    n = out.n_tokens
    if positions is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(positions, slice):
        chosen = list(range(n))[positions]
    elif isinstance(positions, (int, np.integer)):
        chosen = [out._position(int(positions))]
    else:
        chosen = [out._position(p) for p in positions]
    if not chosen:
        raise InputError(f"The positions selection {positions!r} is empty; this output has {n} tokens.")
    return np.unique(np.asarray(chosen, dtype=np.int64))


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def activation_matrix(out: ActivationSource, layers: Sequence[int] | None = None,
                      positions: Sequence[int] | slice | None = None) -> tuple[np.ndarray, list[int], np.ndarray,
                                                                               np.ndarray]:
    """The NMF input before clipping: float32 (n_positions, n_neurons_used), a new array.

    Returns (X, layers used in numeric order, positions used ascending, neuron_index (n_neurons_used, 2)).
    """
    acts = _require_activations(out)
    captured = _captured_layers(out)
    if layers is None:
        rows = sorted(range(len(captured)), key=captured.__getitem__)  # numeric order, however they were stored
    else:
        if isinstance(layers, (int, np.integer)):
            layers = [layers]
        if len(layers) == 0:
            raise InputError("layers is empty; pass None for every captured layer, or a list of layers.")
        rows = sorted({_layer_row(out, layer) for layer in layers}, key=captured.__getitem__)
    used_layers = [captured[r] for r in rows]
    pos = _positions(out, positions)
    x = np.concatenate([acts[r][pos] for r in rows], axis=1).astype(np.float32, copy=False)  # always a new array
    neuron_index = np.concatenate([
        np.stack([np.full(acts.shape[2], captured[r]), np.arange(acts.shape[2])], axis=1) for r in rows
    ]).astype(np.int64)
    return x, used_layers, pos, neuron_index


# ----- the three analyses -----
def factorize(x: np.ndarray, n_components: int = 8, progress: bool | None = None,
              **nmf_options: Any) -> Factorization:
    """Factorise an activation matrix x float32 (n_tokens_used, n_neurons_used) into ``n_components`` factors with
    scikit-learn's NMF; x is clipped at 0 in place (pass a copy you own, as :func:`activation_matrix` gives).

    **Negative values are clipped to 0** before the factorisation, as Ecco does: NMF needs non-negative input, and
    GELU and SiLU give small negative values (down to about -0.17 and -0.28). Gated MLPs (SwiGLU: act(gate(x)) *
    up(x), e.g. Llama, SmolLM2) are signed, with about half their values negative and some large; clipping keeps
    only the positive part there. ``clipped_fraction`` says what share of the values was clipped.

    nmf_options go to ``sklearn.decomposition.NMF`` and override ``DEFAULT_NMF_OPTIONS`` (init="nndsvda",
    solver="cd", max_iter=500, tol=1e-4, random_state=0): seeded, so the same input gives the same result.
    A ConvergenceWarning from scikit-learn is passed on. InputError for n_components outside
    1..min(n_tokens_used, n_neurons_used) or non-finite input.
    """
    from sklearn.decomposition import NMF

    n_tokens, n_neurons = x.shape
    limit = min(n_tokens, n_neurons)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
            or not 1 <= n_components <= limit:
        raise InputError(f"n_components={n_components!r} is not possible here: it must be an integer from 1 to "
                         f"min(n_tokens, n_neurons) = min({n_tokens}, {n_neurons}) = {limit}. Use fewer "
                         "components or more tokens.")
    if not np.isfinite(x).all():
        raise InputError("The activations contain NaN or infinite values; NMF cannot factorise them.")
    clipped_fraction = float((x < 0).mean()) if x.size else 0.0
    np.maximum(x, 0, out=x)

    options = {**DEFAULT_NMF_OPTIONS, **nmf_options}
    model = NMF(n_components=int(n_components), **options)
    with ticking(f"NMF {n_tokens} x {n_neurons}", progress):
        w = model.fit_transform(x)
    return Factorization(
        factors=np.ascontiguousarray(w.T, dtype=np.float32),
        components=np.ascontiguousarray(model.components_, dtype=np.float32),
        reconstruction_error=float(model.reconstruction_err_), clipped_fraction=clipped_fraction,
        n_iter=int(model.n_iter_), options={"n_components": int(n_components), **options},
    )


def top_neurons(out: ActivationSource, position: int, k: int = 10, layer: int | None = None) -> list[dict[str, Any]]:
    """The k neurons with the largest activation at token ``position``: [{"layer", "neuron", "value"}].

    Values are the raw (unclipped) activations; "strongest" means largest value, so GELU/SiLU's small negatives rank
    last. layer: one captured layer, or None for every captured layer. Ties keep (layer, neuron) order.
    """
    acts = _require_activations(out)
    captured = _captured_layers(out)
    k = check_k(k)
    p = out._position(position)
    rows = [_layer_row(out, layer)] if layer is not None else sorted(range(len(captured)), key=captured.__getitem__)
    values = np.concatenate([acts[r, p].astype(np.float32) for r in rows])
    width = acts.shape[2]
    order = np.argsort(-values, kind="stable")[:k]
    return [{"layer": captured[rows[i // width]], "neuron": int(i % width), "value": float(values[i])}
            for i in order]


def neuron_columns(out: ActivationSource, layer: int, neurons: Sequence[int] | int) -> tuple[np.ndarray, int,
                                                                                            list[int]]:
    """Raw activations of ``neurons`` of one captured ``layer`` over every token: (float32 (n_neurons_chosen,
    n_tokens), the model layer, the neuron indices); a new array."""
    acts = _require_activations(out)
    row = _layer_row(out, layer)
    index = _captured_layers(out)[row]
    width = acts.shape[2]
    if isinstance(neurons, (int, np.integer)) and not isinstance(neurons, bool):
        neurons = [neurons]
    chosen = list(neurons)
    if not chosen:
        raise InputError("neurons is empty: give one or more neuron indices, e.g. neurons=[0, 7].")
    bad = [n for n in chosen
           if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n < width]
    if bad:
        raise InputError(f"Neuron indices {bad} are out of range: layer {index} has {width} neurons (0..{width - 1}).")
    values = acts[row][:, np.asarray(chosen, dtype=np.int64)].T.astype(np.float32)
    return values, index, [int(n) for n in chosen]
