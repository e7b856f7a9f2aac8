"""Gemma Scope folders (JumpReLU SAEs and transcoders from Google DeepMind), as SAELens reads them.

Gemma Scope 1 (Gemma 2): ``params.npz`` with ``W_enc`` (d_in, d_sae), ``W_dec`` (d_sae, d_in), ``b_enc``,
``b_dec``, ``threshold`` (a ``w_`` prefix is read as ``W_``), float32; no config file: the layer and width come
from the folder's path (``layer_12/width_16k/average_l0_82``). apply_b_dec_to_input is False. An ``embedding``
SAE is rescaled as SAELens rescales it (W_enc / sqrt(d_in), W_dec * sqrt(d_in)).

Gemma Scope 2 (Gemma 3): ``params.safetensors`` with lowercase ``w_enc``, ``w_dec``, ``b_enc``, ``b_dec``,
``threshold`` and, for affine-skip transcoders, ``affine_skip_connection`` stored (d_in, d_out) (W_skip is its
transpose), plus ``config.json`` (architecture "jump_relu", model_name, hf_hook_point_in, hf_hook_point_out,
affine_connection). A transcoder (a ``transcoder`` folder, an output hook point, or a skip connection) encodes its
input site and decodes to its output site, with ``decode(acts, x_in)`` adding ``x_in @ W_skip.T``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from ...errors import InputError
from .files import read_json, read_tensors, weights_file

NPZ_FILE = "params.npz"
SAFETENSORS_FILE = "params.safetensors"
CONFIG_FILE = "config.json"


def is_scope_1(folder: Path) -> bool:
    return (folder / NPZ_FILE).is_file()


def is_scope_2(folder: Path) -> bool:
    return (folder / SAFETENSORS_FILE).is_file()


def _site_from_path(folder: Path) -> dict:
    tail = "/".join(folder.parts[-3:])
    site: dict = {}
    layer = re.search(r"layer_(\d+)", tail)
    if layer:
        site["layer"] = int(layer.group(1))
    width = re.search(r"width_(\w+?)(?:_|/|$)", tail)
    if width:
        site["width"] = width.group(1)
    return site


def _check(folder: Path, state: dict[str, torch.Tensor], names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in state]
    if missing:
        raise InputError(f"{folder}: a Gemma Scope dictionary holds {', '.join(names)}; missing: "
                         f"{', '.join(missing)} (it holds {', '.join(sorted(state)) or 'nothing'}).")
    w_enc, w_dec = state[names[0]], state[names[1]]
    if w_enc.ndim != 2 or w_dec.ndim != 2:
        raise InputError(f"{folder}: {names[0]} {tuple(w_enc.shape)} and {names[1]} {tuple(w_dec.shape)} must be "
                         "matrices (a cross-layer transcoder's 3-D decoder is not read yet).")


def read_scope_1(folder: Path, dtype: torch.dtype | None = None) -> dict:
    """The Gemma Scope 1 SAE in ``folder`` (params.npz), in ``dtype`` (None: float32, as SAELens loads it)."""
    raw = read_tensors(folder / NPZ_FILE)
    state = {("W_" + k[2:] if k.startswith("w_") else k): v.to(torch.float32) for k, v in raw.items()}
    _check(folder, state, ("W_enc", "W_dec", "b_enc", "b_dec", "threshold"))
    factor = state.pop("scaling_factor", None)
    if factor is not None and not torch.allclose(factor, torch.ones_like(factor)):
        raise InputError(f"{folder / NPZ_FILE} holds a scaling_factor that is not all ones; SAELens refuses it too.")
    if "embedding" in "/".join(folder.parts[-3:]):
        d_in = state["W_enc"].shape[0]
        state["W_enc"] = state["W_enc"] / math.sqrt(d_in)
        state["W_dec"] = state["W_dec"] * math.sqrt(d_in)
    tensors = {n: state[n].to(dtype or torch.float32) for n in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")}
    return dict(**tensors, architecture="jumprelu", apply_b_dec_to_input=False, format="gemma_scope",
               site=_site_from_path(folder), config={}, path=folder)


def read_scope_2(folder: Path, dtype: torch.dtype | None = None) -> dict:
    """The Gemma Scope 2 SAE or transcoder in ``folder`` (params.safetensors + config.json), in ``dtype`` (None:
    float32, as SAELens loads it)."""
    config = read_json(folder / CONFIG_FILE) if (folder / CONFIG_FILE).is_file() else {}
    architecture = config.get("architecture", "jump_relu")
    if architecture != "jump_relu":
        raise InputError(f"{folder / CONFIG_FILE}: Gemma Scope 2 architecture {architecture!r} is not read "
                         "(only jump_relu; SAELens refuses the others too).")
    state = read_tensors(weights_file(folder, SAFETENSORS_FILE))
    _check(folder, state, ("w_enc", "w_dec", "b_enc", "b_dec", "threshold"))
    dtype = dtype or torch.float32
    skip = state.get("affine_skip_connection")
    tail = "/".join(folder.parts[-3:])
    transcoder = skip is not None or "transcoder" in tail or bool(config.get("hf_hook_point_out"))
    if skip is not None and skip.shape != (state["w_enc"].shape[0], state["w_dec"].shape[1]):
        raise InputError(f"{folder}: affine_skip_connection is {tuple(skip.shape)}; it is stored (d_in, d_out) = "
                         f"({state['w_enc'].shape[0]}, {state['w_dec'].shape[1]}).")
    site = {**_site_from_path(folder),
            **{k: config[k] for k in ("model_name", "hf_hook_point_in", "hf_hook_point_out") if config.get(k)}}
    return dict(W_enc=state["w_enc"].to(dtype), W_dec=state["w_dec"].to(dtype), b_enc=state["b_enc"].to(dtype),
               b_dec=state["b_dec"].to(dtype), threshold=state["threshold"].to(dtype),
               W_skip=skip.T.contiguous().to(dtype) if skip is not None else None, architecture="jumprelu",
               transcoder=transcoder, apply_b_dec_to_input=False, format="gemma_scope_2", site=site,
               config=config, path=folder)
