"""Direct logit attribution at many positions at once (``out.logit_attributions(...)``): for each position, the logit
(difference) of its target split into the embedding, each attention layer or head, each MLP and the bias terms,
computed in one batched pass (each weight read once for a chunk of positions; the math is
:mod:`ecco_widgets.analysis.components.batched`).

>>> import numpy as np
>>> r = LogitAttributions(positions=np.array([0, 1], np.int32), target_ids=np.array([7, 8], np.int64),
...     targets=[" x", " y"], foil_ids=np.array([-1, -1], np.int64), foils=["", ""], unit="layer",
...     labels=["embed", "0.attn", "0.mlp"], kinds=["embed", "attn", "mlp"], layers=np.array([-1, 0, 0], np.int32),
...     indices=np.array([-1, -1, -1], np.int32), values=np.array([[0.5, 1.0, -0.25], [0, 2, 1]], np.float32),
...     logit=np.array([1.25, 3.0], np.float32), attn_by_layer=np.array([[1.0], [2.0]], np.float32),
...     mlp_by_layer=np.array([[-0.25], [1.0]], np.float32), embed=np.array([0.5, 0.0], np.float32))
>>> r.values.shape, r.by_layer.tolist(), r.accumulated[1].tolist(), r.at(0).top(1)[0]["label"]
((2, 3), [[0.75], [3.0]], [0.0, 3.0], '0.attn')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.components import top_token
from ..analysis.components.batched import positions_attribution
from ..errors import InputError, NotAvailableError
from .logit_attribution import SELF_CHECK, LogitAttribution, _token_id
from .storage import save_result

#: Units computed for many positions at once ("neuron": one position at a time, out.logit_attribution).
POSITION_UNITS = ("layer", "head")


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, np.float32)


@dataclass
class LogitAttributions:
    """DLA at every one of ``positions`` (int32 (n_positions,)): logit(target_ids[i]) - logit(foil_ids[i]) (-1: no
    foil) predicted there. values float32 (n_positions, n_components), the columns named by labels / kinds / layers /
    indices as in :class:`LogitAttribution`; logit, embed, final_bias, final_scale float32 (n_positions,);
    attn_by_layer / mlp_by_layer float32 (n_positions, n_layers). ``at(i)`` is row i as a LogitAttribution."""

    positions: np.ndarray
    target_ids: np.ndarray
    targets: list[str]
    foil_ids: np.ndarray
    foils: list[str]
    unit: str
    labels: list[str]
    kinds: list[str]
    layers: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    logit: np.ndarray
    attn_by_layer: np.ndarray
    mlp_by_layer: np.ndarray
    embed: np.ndarray | None = None
    final_bias: np.ndarray | None = None
    final_scale: np.ndarray | None = None
    softcap: float | None = None
    model_name: str = ""
    dtype: str = "float32"
    _out: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.positions)
        self.embed = _zeros(n) if self.embed is None else self.embed
        self.final_bias = _zeros(n) if self.final_bias is None else self.final_bias
        self.final_scale = np.ones(n, np.float32) if self.final_scale is None else self.final_scale

    @property
    def n_positions(self) -> int:
        return int(len(self.positions))

    @property
    def n_layers(self) -> int:
        return int(self.attn_by_layer.shape[1])

    @property
    def total(self) -> np.ndarray:
        """float64 (n_positions,): the sum of every component at each position."""
        return np.sum(self.values, axis=1, dtype=np.float64)

    @property
    def error(self) -> np.ndarray:
        """float64 (n_positions,): |total - logit| at each position."""
        return np.abs(self.total - self.logit)

    @property
    def by_layer(self) -> np.ndarray:
        """float32 (n_positions, n_layers): what each block adds at each position."""
        return (self.attn_by_layer + self.mlp_by_layer).astype(np.float32)

    @property
    def accumulated(self) -> np.ndarray:
        """float32 (n_positions, n_layers + 1): the logit (difference) read after the embedding and after each
        block, at each position (the last column is ``logit``)."""
        start = (self.embed + self.final_bias).astype(np.float64)[:, None]
        steps = np.cumsum(self.by_layer, axis=1, dtype=np.float64)
        return (start + np.concatenate([np.zeros((self.n_positions, 1)), steps], axis=1)).astype(np.float32)

    def at(self, i: int) -> LogitAttribution:
        """Row ``i`` (an index into ``positions``) as the one-position :class:`LogitAttribution`."""
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or not -self.n_positions <= i < \
                self.n_positions:
            raise InputError(f"i must be an index into the {self.n_positions} positions, got {i!r}.")
        return LogitAttribution(
            position=int(self.positions[i]), target_id=int(self.target_ids[i]), target=self.targets[i],
            foil_id=int(self.foil_ids[i]), foil=self.foils[i], unit=self.unit, labels=list(self.labels),
            kinds=list(self.kinds), layers=self.layers, indices=self.indices, values=self.values[i].copy(),
            logit=float(self.logit[i]), attn_by_layer=self.attn_by_layer[i].copy(),
            mlp_by_layer=self.mlp_by_layer[i].copy(), embed=float(self.embed[i]),
            final_bias=float(self.final_bias[i]), final_scale=float(self.final_scale[i]), softcap=self.softcap,
            model_name=self.model_name, dtype=self.dtype, _out=self._out)

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file edited by hand can break that); [] when all is well."""
        n, c, problems = self.n_positions, len(self.labels), []
        if self.values.shape != (n, c):
            problems.append(f"values {self.values.shape} for {n} positions and {c} labels")
        if not (len(self.kinds) == len(self.layers) == len(self.indices) == c):
            problems.append(f"{c} labels for {len(self.kinds)} kinds, {len(self.layers)} layers and "
                            f"{len(self.indices)} indices")
        for name in ("target_ids", "foil_ids", "logit", "embed", "final_bias", "final_scale"):
            if len(getattr(self, name)) != n:
                problems.append(f"{name} has {len(getattr(self, name))} entries for {n} positions")
        if self.attn_by_layer.shape != self.mlp_by_layer.shape or self.attn_by_layer.shape[0] != n:
            problems.append(f"attn_by_layer {self.attn_by_layer.shape} and mlp_by_layer {self.mlp_by_layer.shape}")
        if self.unit not in POSITION_UNITS:
            problems.append(f"unit {self.unit!r}")
        return problems

    def save(self, path: str | Path) -> Path:
        """Write it to one .npz file; ``ew.load`` reads it back as a LogitAttributions."""
        return save_result(self, path)


def _positions(out: Any, positions: Any) -> np.ndarray:
    n = out.n_tokens
    if positions is None or (isinstance(positions, str) and positions == "all"):
        return np.arange(n, dtype=np.int64)
    if isinstance(positions, str) or np.ndim(positions) != 1 or not len(positions):
        raise InputError(f"positions must be None or 'all' (every position) or a non-empty list of positions, got "
                         f"{positions!r}.")
    return np.array([out._position(p) for p in positions], np.int64)


def _tokens(out: Any, token: Any, n: int, what: str) -> np.ndarray | None:
    """None, or int64 (n,): one token for every position, or one per position."""
    if token is None:
        return None
    if isinstance(token, (str, int, np.integer)) and not isinstance(token, (bool, np.bool_)):
        return np.full(n, _token_id(out, token, what), np.int64)
    if np.ndim(token) != 1 or len(token) != n:
        raise InputError(f"{what} must be one token (a one-token string or an id) or a list of {n} tokens, one per "
                         f"position, got {token!r}.")
    return np.array([_token_id(out, t, what) for t in token], np.int64)


def logit_attributions_of(out: Any, positions: Any = None, target: Any = None, foil: Any = None,
                          unit: str = "layer") -> LogitAttributions:
    """Direct logit attribution at many positions of an output analysed with ``components=True``, in one batched
    pass (no forward). positions: None or "all" (every position) or a list. target: None (each position's next token:
    the next token of the text where there is one, the model's top prediction after the last), one token for all,
    or one per position; foil likewise (None: none; where it equals the target the values are 0). unit: "layer" or
    "head". Example: ``out.logit_attributions(unit="layer").by_layer`` (n_positions, n_layers)."""
    if not isinstance(unit, str) or unit not in POSITION_UNITS:
        raise InputError(f"unit must be one of {', '.join(map(repr, POSITION_UNITS))} for many positions, got "
                         f"{unit!r} (neurons: out.logit_attribution(position, unit='neuron'), one position).")
    recorded = getattr(out, "_components", None)
    if recorded is None:
        raise NotAvailableError("This output holds no recorded components (a loaded, copied-by-word or plain output): "
                                "analyze with components=True, e.g. lm.analyze(text, components=True).")
    if getattr(out, "unit", "token") != "token":
        raise NotAvailableError("Direct logit attribution works on tokens: call it on the token-level output.")
    pos = _positions(out, positions)
    targets = _tokens(out, target, len(pos), "target")
    foils = _tokens(out, foil, len(pos), "foil")
    if targets is None:
        ids = np.asarray(out.token_ids, np.int64)
        targets = np.array([ids[p + 1] if p + 1 < len(ids) else top_token(recorded.parts, recorded.inputs, int(p))
                            for p in pos], np.int64)
    found = positions_attribution(recorded.parts, recorded.inputs, pos, targets, foils, unit)
    dtype = str(next(recorded.spec.model.parameters()).dtype).replace("torch.", "")
    total, tolerance = found.values.sum(1, dtype=np.float64), SELF_CHECK.get(dtype, SELF_CHECK["half"])
    scale = np.maximum(np.abs(found.logit), np.abs(found.values).sum(1))
    bad = np.flatnonzero(np.abs(total - found.logit) > tolerance * scale)
    if bad.size:
        i = int(bad[0])
        raise NotAvailableError(f"At position {int(pos[i])} the components add up to {total[i]:.6g}, not to the "
                                f"model's logit {found.logit[i]:.6g}: this model's residual stream is not the sum of "
                                "block 0's input and its sublayers' outputs that direct logit attribution reads.")
    names = _names(out, np.concatenate([targets, foils if foils is not None else []]).astype(np.int64))
    return LogitAttributions(
        positions=pos.astype(np.int32), target_ids=targets, targets=[names[int(t)] for t in targets],
        foil_ids=np.full(len(pos), -1, np.int64) if foils is None else foils,
        foils=[""] * len(pos) if foils is None else [names[int(t)] for t in foils], unit=unit, labels=found.labels,
        kinds=found.kinds, layers=found.layers, indices=found.indices, values=found.values, logit=found.logit,
        attn_by_layer=found.attn_by_layer, mlp_by_layer=found.mlp_by_layer, embed=found.embed,
        final_bias=found.final_bias, final_scale=found.final_scale, softcap=recorded.parts.softcap,
        model_name=out.model_name, dtype=dtype, _out=out)


def _names(out: Any, ids: np.ndarray) -> dict[int, str]:
    from .logit_attribution_view import _names as names_of

    return names_of(out, np.unique(ids))
