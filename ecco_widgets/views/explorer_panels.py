"""The explorer's components, features and mixing panels: their traits' checks (``Explorer`` declares the traits).

- ``components``: ``component_tokens`` int (m,), ascending token positions (>= 1) with ``component_attn`` /
  ``component_mlp`` float32 (m, n_layers), each block's attention and MLP share (with their biases) of the logit of
  that token where it was predicted (at the position before it), ``component_accumulated`` float32
  (m, n_layers + 1), that logit read after the embedding and after each block, and ``component_logit`` float32 (m,),
  the model's own (pre-cap) logit; ``component_head_tokens`` int (h,) (a subset of ``component_tokens``) with
  ``component_heads`` int (h, k, 2) (layer, head) and ``component_head_values`` float32 (h, k), their strongest heads;
  ``component_note`` (e.g. the soft cap).
- ``features``: ``feature_names`` (one per dictionary), ``feature_indices`` int (n_saes, n_tokens, k) (-1 = none),
  ``feature_values`` float32 (same shape), ``feature_active`` int (n_saes, n_tokens) (how many latents were active,
  optional), ``feature_labels``: one dict {str(latent): label} per dictionary (optional).
- ``mixing``: ``mixing_methods`` (context-mixing methods), ``mixing_targets`` int (n_targets,) the explained
  positions, ``mixing_layers`` / ``mixing_rolled`` float32 (n_methods, n_layers, n_targets, n_tokens): per method,
  each target's row of each layer's own mixing matrix and the same rolled out (``out.context_mixing(method)``).

>>> out = components({"component_tokens": [1], "component_attn": [[0.5]], "component_mlp": [[-1.0]],
...                   "component_accumulated": [[0.25, -0.25]]}, 2)
>>> out["component_logit"].tolist(), out["component_heads"].shape
([-0.25], (0, 0, 2))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import ViewValueError, as_float_array, as_int_array
from .base import check_tokens


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, np.ndarray) and value.size == 0)


def _floats(value: Any, name: str, shape: tuple[int, ...], meaning: str) -> np.ndarray:
    arr = as_float_array(value, name).astype(np.float32)
    if arr.shape != shape:
        raise ViewValueError(f"{name}: expected shape {meaning}, got {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ViewValueError(f"{name}: values must be finite (no NaN / inf)")
    return arr


def components(o: dict[str, Any], n: int) -> dict[str, Any]:
    """Pop and check the components panel's traits from ``o`` (n tokens); empty arrays when not given."""
    names = ("component_tokens", "component_attn", "component_mlp", "component_accumulated", "component_logit",
             "component_head_tokens", "component_heads", "component_head_values")
    given = {k: o.pop(k, None) for k in names}
    note = str(o.pop("component_note", "") or "")
    empty = {"component_tokens": np.zeros(0, np.int32), "component_attn": np.zeros((0, 0), np.float32),
             "component_mlp": np.zeros((0, 0), np.float32), "component_accumulated": np.zeros((0, 0), np.float32),
             "component_logit": np.zeros(0, np.float32), "component_head_tokens": np.zeros(0, np.int32),
             "component_heads": np.zeros((0, 0, 2), np.int32), "component_head_values": np.zeros((0, 0), np.float32),
             "component_note": note}
    if not _given(given["component_tokens"]):
        return empty
    tokens = as_int_array(given["component_tokens"], "component_tokens").reshape(-1).astype(np.int32)
    if tokens.min() < 1 or tokens.max() >= n or (np.diff(tokens) <= 0).any():
        raise ViewValueError(f"component_tokens: ascending token positions in 1..{n - 1} (each once) are required")
    attn = as_float_array(given["component_attn"], "component_attn")
    if attn.ndim != 2 or attn.shape[0] != tokens.size:
        raise ViewValueError(f"component_attn: expected (n_component_tokens={tokens.size}, n_layers), got "
                             f"{tuple(attn.shape)}")
    m, n_layers = attn.shape
    out = dict(empty, component_tokens=tokens,
               component_attn=_floats(attn, "component_attn", (m, n_layers), f"({m}, n_layers)"),
               component_mlp=_floats(given["component_mlp"], "component_mlp", (m, n_layers), f"({m}, {n_layers})"),
               component_accumulated=_floats(given["component_accumulated"], "component_accumulated",
                                             (m, n_layers + 1), f"({m}, n_layers + 1 = {n_layers + 1})"))
    logit = given["component_logit"]
    out["component_logit"] = (_floats(logit, "component_logit", (m,), f"({m},)") if _given(logit)
                              else out["component_accumulated"][:, -1].copy())
    if _given(given["component_head_tokens"]):
        ht = as_int_array(given["component_head_tokens"], "component_head_tokens").reshape(-1).astype(np.int32)
        if not np.isin(ht, tokens).all() or len(set(ht.tolist())) != ht.size:
            raise ViewValueError("component_head_tokens: distinct positions, each one of component_tokens")
        heads = as_int_array(given["component_heads"], "component_heads").astype(np.int32)
        if heads.ndim != 3 or heads.shape[0] != ht.size or heads.shape[2] != 2:
            raise ViewValueError(f"component_heads: expected ({ht.size}, k, 2) of (layer, head), got "
                                 f"{tuple(heads.shape)}")
        if heads.size and (heads.min() < 0 or heads[..., 0].max() >= n_layers):
            raise ViewValueError(f"component_heads: layers in 0..{n_layers - 1} and heads >= 0 are required")
        out.update(component_head_tokens=ht, component_heads=heads,
                   component_head_values=_floats(given["component_head_values"], "component_head_values",
                                                 heads.shape[:2], f"{heads.shape[:2]} (one value per head)"))
    return out


def features(o: dict[str, Any], n: int) -> dict[str, Any]:
    """Pop and check the features panel's traits from ``o`` (n tokens); empty arrays when not given."""
    names, labels = o.pop("feature_names", None) or [], o.pop("feature_labels", None) or []
    indices, values, active = (o.pop(k, None) for k in ("feature_indices", "feature_values", "feature_active"))
    if not _given(indices):
        return {"feature_names": [], "feature_indices": np.zeros((0, 0, 0), np.int32),
                "feature_values": np.zeros((0, 0, 0), np.float32), "feature_active": np.zeros((0, 0), np.int32),
                "feature_labels": []}
    names = check_tokens(names, "feature_names")
    idx = as_int_array(indices, "feature_indices").astype(np.int32)
    if idx.ndim != 3 or idx.shape[:2] != (len(names), n):
        raise ViewValueError(f"feature_indices: expected (n_saes={len(names)}, n_tokens={n}, k), got "
                             f"{tuple(idx.shape)}")
    if idx.size and idx.min() < -1:
        raise ViewValueError("feature_indices: latents are >= 0, or -1 for none")
    act = (as_int_array(active, "feature_active").astype(np.int32) if _given(active)
           else (idx >= 0).sum(-1).astype(np.int32))
    if act.shape != idx.shape[:2]:
        raise ViewValueError(f"feature_active: expected shape {idx.shape[:2]}, got {tuple(act.shape)}")
    if labels and len(labels) != len(names):
        raise ViewValueError(f"feature_labels: one dict per dictionary ({len(names)}), got {len(labels)}")
    labels = [{str(int(k)): str(v) for k, v in dict(d).items()} for d in labels] or [{} for _ in names]
    return {"feature_names": names, "feature_indices": idx,
            "feature_values": _floats(values, "feature_values", idx.shape, f"{idx.shape}, like feature_indices"),
            "feature_active": act, "feature_labels": labels}


def mixing(o: dict[str, Any], n: int) -> dict[str, Any]:
    """Pop and check the context-mixing panel's traits from ``o`` (n tokens); empty arrays when not given."""
    names = o.pop("mixing_methods", None) or []
    targets, layers, rolled = (o.pop(k, None) for k in ("mixing_targets", "mixing_layers", "mixing_rolled"))
    if not _given(layers):
        return {"mixing_methods": [], "mixing_targets": np.zeros(0, np.int32),
                "mixing_layers": np.zeros((0,) * 4, np.float32), "mixing_rolled": np.zeros((0,) * 4, np.float32)}
    names = check_tokens(names, "mixing_methods")
    tg = as_int_array([] if targets is None else targets, "mixing_targets").reshape(-1).astype(np.int32)
    if tg.size and (tg.min() < 0 or tg.max() >= n or len(set(tg.tolist())) != tg.size):
        raise ViewValueError(f"mixing_targets: distinct positions in 0..{n - 1} are required, got {tg.tolist()}")
    lay = as_float_array(layers, "mixing_layers")
    if lay.ndim != 4 or lay.shape[0] != len(names) or lay.shape[2:] != (tg.size, n):
        raise ViewValueError(f"mixing_layers: expected (n_methods={len(names)}, n_layers, n_targets={tg.size}, "
                             f"n_tokens={n}), got {tuple(lay.shape)}")
    meaning = f"{tuple(lay.shape)}, like mixing_layers"
    return {"mixing_methods": names, "mixing_targets": tg,
            "mixing_layers": _floats(lay, "mixing_layers", lay.shape, meaning),
            "mixing_rolled": _floats(rolled if _given(rolled) else lay, "mixing_rolled", lay.shape, meaning)}
