"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors`` (SAE.save_model's layout), 6.x configs and the flat
pre-6.0 ones.

6.x cfg.json: architecture, d_in, d_sae, (d_out for transcoders), dtype, apply_b_dec_to_input,
normalize_activations, k and rescale_acts_by_decoder_norm (topk), metadata {model_name, hook_name, hook_name_out,
hook_head_index, ...}. Pre-6.0 (no sae_lens_version, or one below 6.0.0-rc.0; SAELens' handle_pre_6_0_config):
flat keys, hook_point -> hook_name, hook_point_head_index -> hook_head_index, activation_fn_str -> activation_fn;
architecture defaults to standard, apply_b_dec_to_input to True; activation_fn "topk" with activation_fn_kwargs.k
makes a topk SAE; a boolean normalize_activations means expected_average_only_in (True) or none.

Weights (state-dict names): W_enc (d_in, d_sae), W_dec (d_sae, d_out), b_enc, b_dec, threshold (jumprelu), b_gate /
b_mag / r_mag (gated, no b_enc), W_skip (d_out, d_in; skip transcoders); all cast to the config's dtype, as
SAELens' read_sae_components_from_disk does. A ``scaling_factor`` of ones is dropped (SAELens drops it); any other
(pre-6.0 finetuning scaling) is refused, as SAELens 6 cannot load it either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...errors import InputError
from .files import read_json, read_tensors, weights_file

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
#: SAELens architecture -> (activation rule, transcoder, skip connection)
ARCHITECTURES = {
    "standard": ("standard", False, False),
    "topk": ("topk", False, False),
    "jumprelu": ("jumprelu", False, False),
    "gated": ("gated", False, False),
    "transcoder": ("standard", True, False),
    "skip_transcoder": ("standard", True, True),
    "jumprelu_transcoder": ("jumprelu", True, False),
    "jumprelu_skip_transcoder": ("jumprelu", True, True),
}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
          "bfloat16": torch.bfloat16}
SITE_KEYS = ("model_name", "hook_name", "hook_name_out", "hook_head_index", "hook_head_index_out",
             "hf_hook_name", "hf_hook_name_out", "neuronpedia_id", "prepend_bos", "context_size", "dataset_path",
             "model_class_name", "sae_lens_version", "sae_lens_training_version")


def is_folder(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and weights_file(folder, WEIGHTS_FILE) is not None


def _version_below_6(version: Any) -> bool:
    if not version:
        return True
    try:
        from packaging.version import Version

        return Version(str(version)) < Version("6.0.0-rc.0")
    except Exception:  # an unreadable version string: treat as old, as a missing one is
        return True


def upgrade_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config in 6.x form (SAELens' handle_config_defaulting): flat pre-6.0 configs renamed and defaulted,
    their site keys gathered under ``metadata``."""
    version = cfg.get("sae_lens_version") or (cfg.get("metadata") or {}).get("sae_lens_version")
    if not _version_below_6(version):
        return dict(cfg)
    renames = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index",
               "activation_fn_str": "activation_fn"}
    new = {renames.get(k, k): v for k, v in cfg.items()}
    new.setdefault("apply_b_dec_to_input", True)
    new.setdefault("activation_fn", "relu")
    new.setdefault("architecture", "standard")
    kwargs = new.get("activation_fn_kwargs") or {}
    if new.get("activation_fn") == "topk" and kwargs.get("k") is not None:
        new["architecture"], new["k"] = "topk", kwargs["k"]
    if isinstance(new.get("normalize_activations"), bool):
        new["normalize_activations"] = "expected_average_only_in" if new["normalize_activations"] else "none"
    if new.get("normalize_activations") is None:
        new["normalize_activations"] = "none"
    new["metadata"] = {**{k: v for k, v in new.items() if k in SITE_KEYS}, **(cfg.get("metadata") or {})}
    return new


def read(folder: Path, scale_factor: float | None = None, dtype: torch.dtype | None = None) -> dict:
    """The SAELens dictionary in ``folder``, computed in ``dtype`` (None: the config's dtype)."""
    cfg = upgrade_config(read_json(folder / CONFIG_FILE))
    architecture = cfg.get("architecture", "standard")
    if architecture not in ARCHITECTURES:
        raise InputError(f"{folder / CONFIG_FILE}: SAELens architecture {architecture!r} is not read yet; "
                         f"read: {', '.join(ARCHITECTURES)}.")
    rule, transcoder, skip = ARCHITECTURES[architecture]
    if transcoder and cfg.get("apply_b_dec_to_input", True):
        raise InputError(f"{folder / CONFIG_FILE}: a {architecture} with apply_b_dec_to_input true; SAELens refuses "
                         "it (b_dec lives at the output site). Set it to false in the config.")
    config_dtype = str(cfg.get("dtype", "float32")).replace("torch.", "")
    if dtype is None:
        if config_dtype not in DTYPES:
            raise InputError(f"{folder / CONFIG_FILE}: dtype {cfg.get('dtype')!r} is not one of {', '.join(DTYPES)}.")
        dtype = DTYPES[config_dtype]
    state = {k: v.to(dtype) for k, v in read_tensors(weights_file(folder, WEIGHTS_FILE)).items()}
    _drop_unit_scaling_factor(state, folder)
    normalization = cfg.get("normalize_activations") or "none"
    if normalization not in ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in"):
        raise InputError(f"{folder / CONFIG_FILE}: normalize_activations {normalization!r} is not read yet "
                         "(read: none, constant_norm_rescale, layer_norm, expected_average_only_in).")
    names = {"standard": ["W_enc", "W_dec", "b_enc", "b_dec"], "topk": ["W_enc", "W_dec", "b_enc", "b_dec"],
             "jumprelu": ["W_enc", "W_dec", "b_enc", "b_dec", "threshold"],
             "gated": ["W_enc", "W_dec", "b_dec", "b_gate", "b_mag", "r_mag"]}[rule] + (["W_skip"] if skip else [])
    missing = [n for n in names if n not in state]
    if missing:
        raise InputError(f"{folder}: a SAELens {architecture} dictionary needs {', '.join(missing)} in "
                         f"{WEIGHTS_FILE}; it holds {', '.join(sorted(state)) or 'nothing'}.")
    extra = sorted(set(state) - set(names))
    if extra:
        raise InputError(f"{folder}: {WEIGHTS_FILE} holds {', '.join(extra)}, which a SAELens {architecture} "
                         "dictionary does not have (SAELens refuses unexpected keys too).")
    check_sizes(folder / CONFIG_FILE, cfg, state, transcoder)
    tensors = {n: state[n] for n in names}
    if normalization == "expected_average_only_in":
        tensors = fold_scale_factor(tensors, scale_factor, folder)
    metadata = cfg.get("metadata") or {}
    site = {k: v for k, v in {**cfg, **metadata}.items() if k in SITE_KEYS and v is not None}
    return dict(**tensors, architecture=rule, k=cfg.get("k") if rule == "topk" else None, transcoder=transcoder,
               apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
               rescale_acts_by_decoder_norm=bool(cfg.get("rescale_acts_by_decoder_norm", False)) and rule == "topk",
               normalization="none" if normalization == "expected_average_only_in" else normalization,
               normalize_output=not transcoder,
               scale_factor=scale_factor if normalization == "expected_average_only_in" else None,
               format="saelens", site=site, config=cfg, path=folder)


def _drop_unit_scaling_factor(state: dict[str, torch.Tensor], folder: Path) -> None:
    factor = state.pop("scaling_factor", None)
    if factor is not None and not torch.allclose(factor.float(), torch.ones_like(factor, dtype=torch.float32)):
        raise InputError(f"{folder / WEIGHTS_FILE} holds a finetuning scaling_factor that is not all ones; "
                         "SAELens 6 cannot load such a file either. Fold it into W_dec first.")


def check_sizes(config_path: Path, cfg: dict[str, Any], state: dict[str, torch.Tensor], transcoder: bool) -> None:
    """d_in, d_sae (and d_out) in the config against W_enc / W_dec's shapes."""
    w_enc, w_dec = state["W_enc"], state["W_dec"]
    if w_enc.ndim != 2 or w_dec.ndim != 2:
        raise InputError(f"{config_path.parent}: W_enc and W_dec must be matrices; they are "
                         f"{tuple(w_enc.shape)} and {tuple(w_dec.shape)}.")
    d_out = cfg.get("d_out", cfg.get("d_in")) if transcoder else cfg.get("d_in")
    want = {"d_in": (cfg.get("d_in"), int(w_enc.shape[0])), "d_sae": (cfg.get("d_sae"), int(w_enc.shape[1])),
            "d_out": (d_out, int(w_dec.shape[1]))}
    wrong = {k: v for k, v in want.items() if v[0] is not None and int(v[0]) != v[1]}
    if wrong or int(w_dec.shape[0]) != int(w_enc.shape[1]):
        found = "; ".join(f"{k}={c} in the config but {t} in the weights" for k, (c, t) in wrong.items())
        raise InputError(f"{config_path}: the config and the weights disagree: "
                         f"{found or ''}{'; ' if found else ''}W_enc {tuple(w_enc.shape)}, W_dec {tuple(w_dec.shape)}.")


def fold_scale_factor(tensors: dict[str, torch.Tensor], scale_factor: float | None,
                      folder: Path) -> dict[str, torch.Tensor]:
    """expected_average_only_in, as SAELens folds it (fold_activation_norm_scaling_factor): W_enc * s, W_dec / s,
    b_dec / s; the SAE then reads raw activations."""
    if scale_factor is None:
        raise InputError(f"{folder}: this SAE normalises its input with expected_average_only_in, whose scale factor "
                         "is not in its files (SAELens keeps it in its pretrained_saes.yaml, or its trainer's "
                         "activation_scaler.json). Pass it: SAE.load(path, scale_factor=...).")
    s = float(scale_factor)
    if not s > 0 or s != s or s == float("inf"):
        raise InputError(f"scale_factor must be a positive finite number; got {scale_factor!r}.")
    out = dict(tensors)
    out["W_enc"], out["W_dec"], out["b_dec"] = tensors["W_enc"] * s, tensors["W_dec"] / s, tensors["b_dec"] / s
    return out
