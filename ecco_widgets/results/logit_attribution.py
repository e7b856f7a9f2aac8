"""Direct logit attribution (DLA) of one position: the target's logit (or target - foil) split into the embedding,
each attention layer or head, each MLP or neuron and the bias terms, beside the logit (difference) read after each
layer (``out.logit_attribution(...)``; the math is :mod:`ecco_widgets.analysis.components.dla`).

>>> import numpy as np
>>> r = LogitAttribution(position=2, target_id=7, target=" x", foil_id=-1, foil="", unit="layer",
...     labels=["embed", "0.attn", "0.mlp"], kinds=["embed", "attn", "mlp"], layers=np.array([-1, 0, 0], np.int32),
...     indices=np.array([-1, -1, -1], np.int32), values=np.array([0.5, 1.0, -0.25], np.float32), logit=1.25,
...     attn_by_layer=np.array([1.0], np.float32), mlp_by_layer=np.array([-0.25], np.float32), embed=0.5)
>>> r.total, r.by_layer.tolist(), r.accumulated.tolist(), r.top(1)[0]["label"]
(1.25, [0.75], [0.5, 1.25], '0.attn')
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.components import UNITS, direct_logit_attribution, top_token
from ..analysis.components.attention import attention_rows
from ..errors import InputError, NotAvailableError
from .storage import save_result

#: The self-check of every decomposition: |sum of components - the model's logit| at most this fraction of the larger
#: of |logit| and the sum of |components| (measured on the zoo: below 1e-6 in float32, 7e-3 in bfloat16), else refused.
SELF_CHECK = {"float32": 1e-4, "float64": 1e-4, "half": 3e-2}


@dataclass
class LogitAttribution:
    """DLA at ``position``: logit(target) - logit(foil) (foil_id -1: the target's logit alone) predicted there.

    values float32 (n_components,), one per label: "embed" (block 0's input), "3.attn" or "3.h5" (a head: its slice
    of the output projection's input through its slice of the projection), "3.mlp" or "3.n17" (a neuron of the down
    projection's input), "3.attn.bias" / "3.mlp.bias" (a projection's bias, with a post-norm's bias) and "final.bias"
    (the final norm's and unembedding's biases). kinds / layers / indices say what each is (layer -1 and index -1
    where none). logit: the model's own logit (difference) before any soft cap, from the unembedding's input in the
    same forward; error: |values.sum() - logit|. attn_by_layer / mlp_by_layer float32 (n_layers,): each sublayer's
    share with its biases; embed, final_bias: those two terms. final_scale: the final norm's scale at the position,
    frozen. softcap: the model's final-logit soft cap (the pre-cap logit is what is attributed), else None.
    """

    position: int
    target_id: int
    target: str
    foil_id: int
    foil: str
    unit: str
    labels: list[str]
    kinds: list[str]
    layers: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    logit: float
    attn_by_layer: np.ndarray
    mlp_by_layer: np.ndarray
    embed: float = 0.0
    final_bias: float = 0.0
    final_scale: float = 1.0
    softcap: float | None = None
    model_name: str = ""
    dtype: str = "float32"
    _out: Any = field(default=None, repr=False, compare=False)  # the output it came from (the view reads it)

    @property
    def n_layers(self) -> int:
        return int(len(self.attn_by_layer))

    @property
    def total(self) -> float:
        """The sum of every component (float64): the logit (difference), up to the model's rounding."""
        return float(np.sum(self.values, dtype=np.float64))

    @property
    def error(self) -> float:
        """|total - logit|: how far the components are from the model's own (pre-cap) logit (difference)."""
        return abs(self.total - self.logit)

    @property
    def by_layer(self) -> np.ndarray:
        """float32 (n_layers,): what each block adds (its attention and MLP with their biases)."""
        return (self.attn_by_layer + self.mlp_by_layer).astype(np.float32)

    @property
    def accumulated(self) -> np.ndarray:
        """float32 (n_layers + 1,): the logit (difference) read from the residual stream through the final norm at its
        frozen scale, after the embedding (first value) and after each block; the last value is ``logit``."""
        start = self.embed + self.final_bias
        return (start + np.concatenate([[0.0], np.cumsum(self.by_layer, dtype=np.float64)])).astype(np.float32)

    @property
    def note(self) -> str:
        if not self.softcap:
            return ""
        return (f"The pre-cap logit is attributed: the model outputs tanh(logit / {self.softcap:g}) * "
                f"{self.softcap:g}.")

    def top(self, k: int = 10) -> list[dict[str, Any]]:
        """The k components of largest |value|: [{"label", "kind", "layer", "index", "value"}], largest first."""
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        order = np.argsort(-np.abs(self.values), kind="stable")[:k]
        return [{"label": self.labels[i], "kind": self.kinds[i], "layer": int(self.layers[i]),
                 "index": int(self.indices[i]), "value": float(self.values[i])} for i in order]

    def consistency_problems(self) -> list[str]:
        """What disagrees among the arrays (a file edited by hand can break that); [] when all is well."""
        n, problems = len(self.values), []
        if not (len(self.labels) == len(self.kinds) == len(self.layers) == len(self.indices) == n):
            problems.append(f"{n} values for {len(self.labels)} labels, {len(self.kinds)} kinds, {len(self.layers)} "
                            f"layers and {len(self.indices)} indices")
        if self.attn_by_layer.shape != self.mlp_by_layer.shape:
            problems.append(f"attn_by_layer {self.attn_by_layer.shape} and mlp_by_layer {self.mlp_by_layer.shape}")
        if self.unit not in UNITS:
            problems.append(f"unit {self.unit!r}")
        return problems

    def attention_pattern(self, layer: int | None = None, head: int | None = None) -> np.ndarray:
        """float32: each head's attention from ``position`` over the tokens, (n_layers, n_heads, n_tokens); with
        ``layer``: (n_heads, n_tokens); with ``layer`` and ``head``: (n_tokens,). From the output's captured
        attention (``attention=True``), else recomputed on demand by re-running only that layer's attention module
        on the inputs the components=True forward recorded (:mod:`ecco_widgets.analysis.components.attention`).
        Example: ``r.attention_pattern(3, 5)``"""
        return attention_pattern_of(self._out, self.position, layer, head, self.n_layers)

    def save(self, path: str | Path) -> Path:
        """Write it to one .npz file; ``ew.load`` reads it back as a LogitAttribution."""
        return save_result(self, path)

    def view(self, **view_options: Any):
        """LogitAttributionView: layers x heads (+ an MLP column) on a diverging scale, attention vs MLP per layer, the
        logit read after each layer, each head's promoted tokens (click) and attention pattern (hover; analyze with
        ``attention=True``). A layer or neuron result is recomputed by head from its output."""
        from .logit_attribution_view import logit_attribution_view

        return logit_attribution_view(self, **view_options)


def attention_pattern_of(out: Any, position: int, layer: int | None, head: int | None, n_layers: int) -> np.ndarray:
    """The attention rows of :meth:`LogitAttribution.attention_pattern`, captured or recomputed."""
    for name, value in (("layer", layer), ("head", head)):
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))):
            raise InputError(f"{name} must be an integer index, got {value!r}.")
    if head is not None and layer is None:
        raise InputError("head needs its layer: attention_pattern(layer, head).")
    if layer is not None and not -n_layers <= layer < n_layers:
        raise InputError(f"layer {layer} is out of range: the model has {n_layers} layers.")
    layers = None if layer is None else [int(layer) % n_layers]
    weights = None if out is None else getattr(out, "attention_weights", None)
    recorded = None if out is None else getattr(out, "_components", None)
    if weights is not None and weights.ndim == 4:
        rows = np.asarray(weights[:, :, position, :] if layers is None else weights[layers, :, position, :], np.float32)
    elif recorded is not None and getattr(recorded, "attention_calls", None):
        lm = getattr(out._encode_watch, "__self__", None)
        with getattr(lm, "lock", nullcontext()):
            rows = attention_rows(recorded.spec.model, recorded.attention_calls, position, layers)
    else:
        raise NotAvailableError("No attention to show: this result has neither captured attention nor the recorded "
                                "forward to recompute it from (a loaded file); analyze with components=True (or "
                                "attention=True) and call it again.")
    if head is not None and not -rows.shape[1] <= head < rows.shape[1]:
        raise InputError(f"head {head} is out of range: the model has {rows.shape[1]} heads.")
    rows = rows if layer is None else rows[0]
    return rows if head is None else rows[int(head)]


def _token_id(out: Any, token: Any, what: str) -> int:
    if isinstance(token, (bool, np.bool_)) or not isinstance(token, (str, int, np.integer)):
        raise InputError(f"{what} must be one token: a string that is exactly one token (e.g. ' Paris') or a token "
                         f"id, got {token!r}.")
    if out._encode_watch is None:
        raise NotAvailableError("This output is not attached to its model; analyze with components=True.")
    return int(out._encode_watch(token))


def logit_attribution_of(out: Any, position: int = -1, target: Any = None, foil: Any = None,
                         unit: str = "layer") -> LogitAttribution:
    """Direct logit attribution of the prediction at ``position`` (-1: after the last token) of an output analysed with
    ``components=True`` (no new forward pass: the one hooked forward recorded what it needs).

    target: the token whose logit is explained (a one-token string or an id; None: the model's top prediction
    there). foil: a token whose logit is subtracted (logit(target) - logit(foil)), or None. unit: "layer" (each
    attention and MLP whole), "head" (attention split by head) or "neuron" (MLPs split by neuron).
    Example: ``lm.analyze("The Eiffel Tower is in", components=True).logit_attribution(target=" Paris", unit="head")``
    """
    if not isinstance(unit, str) or unit not in UNITS:
        raise InputError(f"unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}.")
    p = out._position(position)
    recorded = getattr(out, "_components", None)
    if recorded is None:
        raise NotAvailableError("This output holds no recorded components (a loaded, copied-by-word or plain output): "
                                "analyze with components=True, e.g. lm.analyze(text, components=True).")
    if getattr(out, "unit", "token") != "token":
        raise NotAvailableError("Direct logit attribution works on tokens: call it on the token-level output.")
    target_id = top_token(recorded.parts, recorded.inputs, p) if target is None else _token_id(out, target, "target")
    foil_id = None if foil is None else _token_id(out, foil, "foil")
    if foil_id is not None and foil_id == target_id:
        raise InputError(f"foil {foil!r} is the target itself: logit(target) - logit(foil) would be 0.")
    found = direct_logit_attribution(recorded.parts, recorded.inputs, p, target_id, foil_id, unit)
    dtype = str(next(recorded.spec.model.parameters()).dtype).replace("torch.", "")
    total, tolerance = float(np.sum(found.values, dtype=np.float64)), SELF_CHECK.get(dtype, SELF_CHECK["half"])
    if abs(total - found.logit) > tolerance * max(abs(found.logit), float(np.abs(found.values).sum())):
        raise NotAvailableError(f"The components add up to {total:.6g}, not to the model's logit {found.logit:.6g}: this "
                                "model's residual stream is not the sum of block 0's input and its sublayers' outputs "
                                "that direct logit attribution reads (a block structure it does not know).")
    lm = getattr(out._encode_watch, "__self__", None)

    def name(token_id: int) -> str:
        if token_id in out.vocab_text or not hasattr(lm, "vocab_text"):
            return out.vocab_text.get(token_id, str(token_id))
        return lm.vocab_text(np.array([token_id])).get(token_id, str(token_id))

    return LogitAttribution(
        position=p, target_id=target_id, target=name(target_id), foil_id=-1 if foil_id is None else foil_id,
        foil="" if foil_id is None else name(foil_id), unit=unit, labels=found.labels, kinds=found.kinds,
        layers=found.layers, indices=found.indices, values=found.values, logit=found.logit,
        attn_by_layer=found.attn_by_layer, mlp_by_layer=found.mlp_by_layer, embed=found.embed,
        final_bias=found.final_bias, final_scale=found.final_scale, softcap=recorded.parts.softcap,
        model_name=out.model_name, dtype=dtype, _out=out)
