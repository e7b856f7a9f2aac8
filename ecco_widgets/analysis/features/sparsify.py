"""sparsify (EleutherAI) folders: ``{hookpoint}/cfg.json`` + ``{hookpoint}/sae.safetensors``, one hookpoint or a
repository of them (``layers.0.mlp``, ``layers.1.mlp``, ...).

cfg.json (SparseCoderConfig + d_in): activation ("topk" | "groupmax"), k, num_latents (0: d_in *
expansion_factor), expansion_factor, skip_connection, transcode, normalize_decoder, multi_topk.
sae.safetensors: ``encoder.weight`` (m, d_in), ``encoder.bias`` (m,), ``W_dec`` (m, d_in), ``b_dec`` (d_in,),
``W_skip`` (d_in, d_in) where skip_connection. Everything is cast to the dtype of the file's first tensor, as
SparseCoder.load_from_disk does.

encode: relu(x' @ encoder.weight.T + encoder.bias), x' = x - b_dec unless transcode; then the k largest (topk) or
each of k groups' largest (groupmax). decode: sum of acts * W_dec rows + b_dec (+ x @ W_skip.T).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...errors import InputError
from .files import read_json, read_tensors, weights_file

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae.safetensors"


def is_folder(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and weights_file(folder, WEIGHTS_FILE) is not None


def hookpoints(folder: Path) -> list[str]:
    """The hookpoint folders of a sparsify repository, in natural order (layers.2 before layers.10)."""
    if not folder.is_dir():
        return []
    names = [f.name for f in folder.iterdir() if f.is_dir() and is_folder(f)]
    return sorted(names, key=lambda n: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", n)])


def read(folder: Path, dtype: torch.dtype | None = None) -> dict:
    """The sparsify dictionary in ``folder`` (one hookpoint), in ``dtype`` (None: the file's first tensor's)."""
    cfg = read_json(folder / CONFIG_FILE)
    path = weights_file(folder, WEIGHTS_FILE)
    state = read_tensors(path)
    if not state:
        raise InputError(f"{path} holds no tensors.")
    if dtype is None:
        dtype = state[sorted(state)[0]].dtype  # safetensors lists its keys sorted; sparsify takes the first
    state = {k: v.to(dtype) for k, v in state.items()}
    skip, transcode = bool(cfg.get("skip_connection", False)), bool(cfg.get("transcode", False))
    names = ["encoder.weight", "encoder.bias", "W_dec", "b_dec"] + (["W_skip"] if skip else [])
    missing, extra = [n for n in names if n not in state], sorted(set(state) - set(names))
    if missing or extra:
        raise InputError(f"{path}: a sparsify dictionary (skip_connection={skip}) holds {', '.join(names)}; "
                         f"{'missing: ' + ', '.join(missing) if missing else ''}"
                         f"{'; ' if missing and extra else ''}{'unexpected: ' + ', '.join(extra) if extra else ''}.")
    activation = cfg.get("activation", "topk")
    if activation not in ("topk", "groupmax"):
        raise InputError(f"{folder / CONFIG_FILE}: sparsify activation {activation!r} is not read (topk, groupmax).")
    d_in = cfg.get("d_in")
    num_latents = cfg.get("num_latents") or (d_in or 0) * cfg.get("expansion_factor", 32)
    encoder = state["encoder.weight"]
    if encoder.ndim != 2 or (d_in is not None and tuple(encoder.shape) != (num_latents, d_in)):
        raise InputError(f"{folder}: the config says d_in={d_in} and {num_latents} latents, so encoder.weight "
                         f"should be ({num_latents}, {d_in}); it is {tuple(encoder.shape)}.")
    if tuple(state["W_dec"].shape) != tuple(encoder.shape):
        raise InputError(f"{folder}: W_dec {tuple(state['W_dec'].shape)} must have encoder.weight's shape "
                         f"{tuple(encoder.shape)} (sparsify's decoder rows are (latents, d_in)).")
    layer = re.search(r"layers\.(\d+)", folder.name)
    site = {"hookpoint": folder.name, **({"layer": int(layer.group(1))} if layer else {})}
    return dict(W_enc=encoder.T.contiguous(), W_dec=state["W_dec"], b_enc=state["encoder.bias"],
               b_dec=state["b_dec"], W_skip=state.get("W_skip"), architecture=activation, k=cfg.get("k", 32),
               transcoder=transcode, apply_b_dec_to_input=not transcode, normalize_output=False,
               fused_encoder_bias=True,
               format="sparsify", site=site, config={**cfg}, path=folder)
