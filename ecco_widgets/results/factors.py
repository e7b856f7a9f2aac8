"""Results of the activation analyses: NMF factors (with their FactorExplorer view) and neuron heatmaps.

>>> import numpy as np
>>> from ecco_widgets.results import Output
>>> rng = np.random.default_rng(0)
>>> out = Output(token_ids=np.arange(6), tokens=list("abcdef"), raw_tokens=list("abcdef"), n_input_tokens=6,
...              ranks=np.ones((2, 5), np.int32), activations=rng.random((2, 6, 5), dtype=np.float32),
...              activation_layers=[0, 1])
>>> nmf = out.run_nmf(n_components=3)
>>> nmf.factors.shape, nmf.components.shape, nmf.neuron_index[7].tolist()
((3, 6), (3, 10), [1, 2])
>>> [row["layer"] for row in out.top_neurons(position=0, k=3, layer=1)]
[1, 1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..analysis.factors import activation_matrix, check_k, factorize, neuron_columns, top_neurons
from ..errors import InputError
from .words import chat_options

__all__ = ["NMFResult", "neuron_heatmap", "nmf_of", "top_neurons"]


@dataclass
class NMFResult:
    """Non-negative matrix factorisation of clipped MLP activations: X ≈ factors.T @ components.

    factors: float32 (n_components, n_tokens_used), how strongly each factor is present at each used token
    (sklearn's W, transposed). components: float32 (n_components, n_neurons_used), each factor's weight on each
    neuron (sklearn's H). reconstruction_error: ||X - factors.T @ components||_F (Frobenius norm, for the default
    beta_loss) where X (n_tokens_used, n_neurons_used) is the clipped input. layers: the layers used, numeric order.
    positions: int64 (n_tokens_used,) the token positions used, ascending; tokens / raw_tokens: their text.
    neuron_index: int64 (n_neurons_used, 2), the (layer, neuron) of each column of X and of ``components``.
    clipped_fraction: share of input values that were negative and clipped to 0. options: the NMF options used.
    excluded_positions: token positions left out of the fit (``exclude_first``: the first token, the attention
    sink); their columns of ``factors`` are 0, and X, reconstruction_error and clipped_fraction cover the other rows.
    """

    factors: np.ndarray
    components: np.ndarray
    reconstruction_error: float
    layers: list[int]
    positions: np.ndarray
    tokens: list[str]
    neuron_index: np.ndarray
    raw_tokens: list[str] = field(default_factory=list)
    n_input_tokens: int = 0
    clipped_fraction: float = 0.0
    n_iter: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    excluded_positions: list[int] = field(default_factory=list)
    unit: str = "token"  # "word": fitted on out.by_word() (a word's activations are its last piece's)
    turns: list[dict[str, Any]] = field(default_factory=list)  # chat turns over the used positions
    special_mask: np.ndarray | None = None  # bool (n_tokens_used,): chat-template special tokens
    note: str = ""  # set when the default number of factors did not fit the text: how many it took, and why

    @property
    def n_components(self) -> int:
        return int(self.factors.shape[0])

    def __repr__(self) -> str:
        return (f"NMFResult(n_components={self.n_components}, tokens={len(self.tokens)}, "
                f"neurons={self.components.shape[1]}, layers={self.layers}, "
                f"reconstruction_error={self.reconstruction_error:.4g})")

    def explore(self, **view_options):
        """FactorExplorer view: a sparkline per factor over the tokens; hover colours the tokens by it."""
        from ..views import FactorExplorer

        view_options.setdefault("factor_labels", [f"Factor {i}" for i in range(self.n_components)])
        excluded = [i for i, p in enumerate(self.positions.tolist()) if p in set(self.excluded_positions)]
        view_options.setdefault("excluded_tokens", excluded)
        view_options.setdefault("unit", self.unit)
        if self.note:
            view_options.setdefault("title", f"Neuron activation factors (NMF): {self.note}")
        return FactorExplorer(tokens=self.tokens, raw_tokens=self.raw_tokens or None,
                              n_input_tokens=self.n_input_tokens, factors=self.factors,
                              **{**chat_options(self), **view_options})

    def top_neurons(self, factor: int, k: int = 10) -> list[tuple[int, int, float]]:
        """The k neurons with the largest weight in ``factor``: [(layer, neuron, weight)], largest first.

        Ties keep the column order (layer, then neuron).
        """
        n = self.n_components
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or not -n <= factor < n:
            raise InputError(f"factor {factor!r} does not exist: this result has {n} factors (0..{n - 1}).")
        k = check_k(k)
        weights = self.components[int(factor) % n]
        order = np.argsort(-weights, kind="stable")[:k]
        return [(int(self.neuron_index[i, 0]), int(self.neuron_index[i, 1]), float(weights[i])) for i in order]


DEFAULT_FACTORS = 8


def nmf_of(out: Any, n_components: int | None = None, layers: Sequence[int] | None = None,
           positions: Sequence[int] | slice | None = None, progress: bool | None = None,
           exclude_first: bool = True, **nmf_options: Any) -> NMFResult:
    """NMF of ``out``'s MLP activations at ``layers`` (default every captured layer, numeric order) and ``positions``
    (default every token; ascending, each once); see :func:`ecco_widgets.analysis.factors.factorize`.

    ``exclude_first`` (default True): the first token (position 0, the attention sink, whose activations are often
    ten times the others' and otherwise take a factor of their own) is left out of the fit when it is among the
    positions: NMF runs on positions 1..n and the first token's factor values are reported as 0
    (``excluded_positions == [0]``; the explorer says so in its legend). ``exclude_first=False`` fits every row.
    ``n_components`` None (the default): 8 factors, or as many as the text allows when it is shorter (one per
    token fitted), said in ``note`` and in the explorer's title; an explicit number that the text cannot give is an
    InputError.
    Example: ``out.run_nmf(n_components=6, exclude_first=False)``
    """
    if not isinstance(exclude_first, bool):
        raise InputError(f"exclude_first must be True or False, got {exclude_first!r}.")
    x, used_layers, pos, neuron_index = activation_matrix(out, layers, positions)
    skip = 1 if exclude_first and len(pos) > 1 and pos[0] == 0 else 0
    note = ""
    if n_components is None:
        rows, cols = x.shape[0] - skip, x.shape[1]
        n_components = max(1, min(DEFAULT_FACTORS, rows, cols))
        if n_components < DEFAULT_FACTORS:
            fitted = f"{rows} token{'s' if rows != 1 else ''}" + (" after the first" if skip else "")
            note = (f"{n_components} factor{'s' if n_components != 1 else ''}, the most these {fitted} allow "
                    f"(the default is {DEFAULT_FACTORS})")
    fact = factorize(x[skip:], n_components, progress=progress, **nmf_options)
    factors = np.zeros((fact.factors.shape[0], len(pos)), dtype=np.float32)
    factors[:, skip:] = fact.factors
    return NMFResult(
        factors=factors, components=fact.components, reconstruction_error=fact.reconstruction_error,
        excluded_positions=[0] if skip else [],
        layers=used_layers, positions=pos, tokens=[out.tokens[p] for p in pos],
        raw_tokens=[out.raw_tokens[p] for p in pos] if len(out.raw_tokens) == out.n_tokens else [],
        n_input_tokens=int((pos < out.n_input_tokens).sum()), neuron_index=neuron_index,
        clipped_fraction=fact.clipped_fraction, n_iter=fact.n_iter, options=fact.options,
        unit=getattr(out, "unit", "token"), note=note, **_chat_at(out, pos),
    )


def _chat_at(out: Any, pos: np.ndarray) -> dict[str, Any]:
    """The output's turns and special tokens over the used positions (ascending): a turn keeps the used tokens
    inside it."""
    special = getattr(out, "special_mask", None)
    turns = []
    for t in getattr(out, "turns", None) or []:
        inside = np.flatnonzero((pos >= t["start"]) & (pos < t["stop"]))
        if inside.size:
            turns.append({"role": t["role"], "start": int(inside[0]), "stop": int(inside[-1]) + 1})
    return {"turns": turns, "special_mask": None if special is None else np.asarray(special)[pos]}


def neuron_heatmap(out: Any, layer: int, neurons: Sequence[int] | int, **view_options: Any):
    """NeuronHeatmap view of raw activations of ``neurons`` of one captured ``layer`` over every token.

    Example: ``out.neuron_heatmap(layer=3, neurons=[12, 400, 1021])``
    """
    from ..views import NeuronHeatmap

    values, index, chosen = neuron_columns(out, layer, neurons)
    view_options.setdefault("neuron_labels", [f"L{index}.N{n}" for n in chosen])
    return NeuronHeatmap(tokens=out.tokens, raw_tokens=out.raw_tokens if len(out.raw_tokens) == out.n_tokens else None,
                         n_input_tokens=out.n_input_tokens, activations=values, **{**chat_options(out), **view_options})
