"""Random sparse dictionaries written in their producers' layouts, and the producers' encode / decode written here
from their source (plain torch, independent of ecco_widgets): used by tests/test_sae_formats.py and by
benchmarks/check_sae_formats.py (which also runs the producers' own code on the same folders).

Each case is (format, architecture, normalisation, variant); ``write(case, folder)`` writes the folder and returns
what the reference needs: the raw tensors as the file holds them, the config, and the load keyword arguments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

D_IN, D_SAE, D_OUT, K, N_ROWS = 16, 48, 12, 6, 10
SCALE_FACTOR = 1.7

#: (format, architecture, normalisation, variant)
CASES = [
    *[("saelens", "standard", n, "") for n in ("none", "constant_norm_rescale", "layer_norm",
                                               "expected_average_only_in")],
    ("saelens", "standard", "none", "no_b_dec_in"),
    ("saelens", "topk", "none", ""), ("saelens", "topk", "layer_norm", ""),
    ("saelens", "topk", "none", "rescale"), ("saelens", "topk", "constant_norm_rescale", "rescale"),
    ("saelens", "jumprelu", "none", ""), ("saelens", "jumprelu", "expected_average_only_in", ""),
    ("saelens", "jumprelu", "none", "batchtopk"),
    ("saelens", "gated", "none", ""), ("saelens", "gated", "constant_norm_rescale", ""),
    ("saelens", "transcoder", "none", ""), ("saelens", "transcoder", "layer_norm", ""),
    ("saelens", "skip_transcoder", "none", ""), ("saelens", "skip_transcoder", "constant_norm_rescale", ""),
    ("saelens", "jumprelu_transcoder", "none", ""), ("saelens", "jumprelu_skip_transcoder", "none", ""),
    ("saelens", "standard", "none", "pre6"), ("saelens", "standard", "expected_average_only_in", "pre6"),
    ("saelens", "topk", "none", "pre6"), ("saelens", "gated", "none", "pre6"), ("saelens", "jumprelu", "none", "pre6"),
    ("saelens", "standard", "none", "bfloat16"), ("saelens", "topk", "none", "bfloat16_file"),
    ("sparsify", "topk", "none", ""), ("sparsify", "groupmax", "none", ""), ("sparsify", "topk", "none", "skip"),
    ("sparsify", "topk", "none", "transcode"), ("sparsify", "topk", "none", "transcode_skip"),
    ("sparsify", "topk", "none", "bfloat16"),
    ("gemma_scope", "jumprelu", "none", ""), ("gemma_scope", "jumprelu", "none", "lowercase"),
    ("gemma_scope_2", "jumprelu", "none", ""), ("gemma_scope_2", "jumprelu_transcoder", "none", ""),
    ("gemma_scope_2", "jumprelu_skip_transcoder", "none", ""),
]


def case_id(case: tuple) -> str:
    return "-".join(p for p in case if p)


def inputs(seed: int = 1, d_in: int = D_IN) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N_ROWS, d_in, generator=g) * 2 + 0.3


def _randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


def _core(g: torch.Generator, architecture: str, d_out: int) -> dict[str, torch.Tensor]:
    t = {"W_enc": _randn(g, D_IN, D_SAE, scale=0.4), "W_dec": _randn(g, D_SAE, d_out, scale=0.3),
         "b_dec": _randn(g, d_out, scale=0.2)}
    if architecture == "gated":
        t.update(b_gate=_randn(g, D_SAE, scale=0.5), b_mag=_randn(g, D_SAE, scale=0.5),
                 r_mag=_randn(g, D_SAE, scale=0.2))
    else:
        t["b_enc"] = _randn(g, D_SAE, scale=0.3)
    if "jumprelu" in architecture:
        t["threshold"] = torch.rand(D_SAE, generator=g) * 0.8
    if "skip" in architecture:
        t["W_skip"] = _randn(g, d_out, D_IN, scale=0.1)
    return t


def write(case: tuple, folder: Path, seed: int = 0) -> dict:
    """Writes the case's folder; returns {"raw": tensors as written, "config": ..., "load": SAE.load kwargs,
    "folder": the folder to load}."""
    fmt, architecture, norm, variant = case
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    transcoder = "transcoder" in architecture or "transcode" in variant
    d_out = D_OUT if transcoder and fmt != "sparsify" else D_IN
    load = {"scale_factor": SCALE_FACTOR} if norm == "expected_average_only_in" else {}
    if fmt == "saelens":
        raw = _core(g, architecture, d_out)
        if variant == "batchtopk":
            raw["threshold"] = torch.full((D_SAE,), 0.35)
        config = _saelens_config(architecture, norm, variant, d_out)
        file_dtype = torch.bfloat16 if variant.startswith("bfloat16") else torch.float32
        raw = {k: v.to(file_dtype) for k, v in raw.items()}
        save_file(raw, str(folder / "sae_weights.safetensors"))
        (folder / "cfg.json").write_text(json.dumps(config))
        return {"raw": raw, "config": config, "load": load, "folder": folder}
    if fmt == "sparsify":
        return _write_sparsify(g, architecture, variant, folder)
    raw = _core(g, "jumprelu" + ("_skip" if "skip" in architecture else ""), d_out)
    if fmt == "gemma_scope":
        names = {"W_enc": "w_enc", "W_dec": "w_dec"} if variant == "lowercase" else {}
        np.savez(folder / "params.npz", **{names.get(k, k): v.numpy() for k, v in raw.items()})
        return {"raw": raw, "config": {}, "load": load, "folder": folder}
    stored = {k.lower(): v for k, v in raw.items() if k != "W_skip"}
    if "W_skip" in raw:
        stored["affine_skip_connection"] = raw["W_skip"].T.contiguous()
    config = {"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt",
              "hf_hook_point_in": "model.layers.5.output"}
    if transcoder:
        config.update(hf_hook_point_in="model.layers.5.pre_feedforward_layernorm.output",
                      hf_hook_point_out="model.layers.5.post_feedforward_layernorm.output",
                      affine_connection="skip" in architecture)
    save_file(stored, str(folder / "params.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return {"raw": raw, "config": config, "load": load, "folder": folder}


def _saelens_config(architecture: str, norm: str, variant: str, d_out: int) -> dict:
    site = {"model_name": "gpt2", "hook_name": "blocks.3.hook_resid_pre"}
    if variant == "pre6":
        config = {"architecture": architecture, "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32",
                  "hook_point": site["hook_name"], "hook_point_layer": 3, "model_name": "gpt2",
                  "sae_lens_version": "3.12.0", "normalize_activations": norm == "expected_average_only_in"}
        if architecture == "topk":
            config.update(architecture="standard", activation_fn_str="topk", activation_fn_kwargs={"k": K})
        return config
    config = {"architecture": architecture, "d_in": D_IN, "d_sae": D_SAE,
              "dtype": "bfloat16" if variant == "bfloat16" else "float32", "device": "cpu",
              "apply_b_dec_to_input": variant != "no_b_dec_in" and "transcoder" not in architecture,
              "normalize_activations": norm, "reshape_activations": "none",
              "metadata": {**site, "sae_lens_version": "6.54.12", "sae_lens_training_version": "6.54.12"}}
    if architecture == "topk":
        config.update(k=K, rescale_acts_by_decoder_norm=variant == "rescale")
    if "transcoder" in architecture:
        config["d_out"] = d_out
        config["metadata"]["hook_name_out"] = "blocks.3.hook_mlp_out"
    return config


def _write_sparsify(g: torch.Generator, architecture: str, variant: str, folder: Path) -> dict:
    transcode, skip = "transcode" in variant, "skip" in variant
    m = D_SAE
    raw = {"encoder.weight": _randn(g, m, D_IN, scale=0.4), "encoder.bias": _randn(g, m, scale=0.3),
           "W_dec": _randn(g, m, D_IN, scale=0.3), "b_dec": _randn(g, D_IN, scale=0.2)}
    if skip:
        raw["W_skip"] = _randn(g, D_IN, D_IN, scale=0.1)
    if variant == "bfloat16":
        raw = {k: v.to(torch.bfloat16) for k, v in raw.items()}
    config = {"activation": architecture, "expansion_factor": 32, "normalize_decoder": True, "num_latents": m,
              "k": K, "multi_topk": False, "skip_connection": skip, "transcode": transcode, "d_in": D_IN}
    hook = folder / "layers.2.mlp"
    hook.mkdir(parents=True, exist_ok=True)
    save_file(raw, str(hook / "sae.safetensors"))
    (hook / "cfg.json").write_text(json.dumps(config))
    return {"raw": raw, "config": config, "load": {}, "folder": hook}


# ----- the producers' math, from their source -----
def reference(case: tuple, written: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(acts, reconstruction) of x as the producer computes them."""
    fmt = case[0]
    if fmt == "sparsify":
        return _ref_sparsify(written["raw"], written["config"], x)
    if fmt == "saelens":
        return _ref_saelens(case, written["raw"], written["config"], x)
    t = {k: v.float() for k, v in written["raw"].items()}  # Gemma Scope: float32, no b_dec on the input
    pre = x @ t["W_enc"] + t["b_enc"]
    acts = torch.relu(pre) * (pre > t["threshold"]).float()
    out = acts @ t["W_dec"] + t["b_dec"]
    if "W_skip" in t:
        out = out + x @ t["W_skip"].T
    return acts, out


def _ref_saelens(case: tuple, raw: dict, config: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    fmt, architecture, norm, variant = case
    dtype = torch.bfloat16 if config.get("dtype") == "bfloat16" else torch.float32
    t = {k: v.to(dtype) for k, v in raw.items()}
    if norm == "expected_average_only_in":  # SAE.fold_activation_norm_scaling_factor
        s = SCALE_FACTOR
        t["W_enc"], t["W_dec"], t["b_dec"] = t["W_enc"] * s, t["W_dec"] / s, t["b_dec"] / s
    x = x.to(dtype)
    h, undo = x, (lambda y: y)
    if norm == "constant_norm_rescale":
        coeff = math.sqrt(D_IN) / x.norm(dim=-1, keepdim=True)
        h, undo = x * coeff, (lambda y: y / coeff)
    elif norm == "layer_norm":
        mu = x.mean(dim=-1, keepdim=True)
        std = (x - mu).std(dim=-1, keepdim=True)
        h, undo = (x - mu) / (std + 1e-5), (lambda y: y * std + mu)
    transcoder = "transcoder" in architecture
    if config.get("apply_b_dec_to_input", True) and not transcoder:
        h = h - t["b_dec"]
    norms = t["W_dec"].norm(dim=-1)
    if architecture == "gated":
        gate = ((h @ t["W_enc"] + t["b_gate"]) > 0).to(dtype)
        acts = gate * torch.relu(h @ (t["W_enc"] * t["r_mag"].exp()) + t["b_mag"])
    else:
        pre = h @ t["W_enc"] + t["b_enc"]
        if architecture == "topk":
            if variant == "rescale":
                pre = pre * norms
            values, index = torch.topk(pre, K, dim=-1)
            acts = torch.zeros_like(pre).scatter(-1, index, values.relu())
        elif "jumprelu" in architecture:
            acts = torch.relu(pre) * (pre > t["threshold"]).to(dtype)
        else:
            acts = torch.relu(pre)
    a = acts / norms if variant == "rescale" else acts
    out = a @ t["W_dec"] + t["b_dec"]
    if not transcoder:
        out = undo(out)
    if "skip" in architecture:
        out = out + x @ t["W_skip"].T
    return acts, out


def _ref_sparsify(raw: dict, config: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = dict(raw)
    x = x.to(t["W_dec"].dtype)
    h = x if config["transcode"] else x - t["b_dec"]
    pre = torch.relu(torch.nn.functional.linear(h, t["encoder.weight"], t["encoder.bias"]))
    k = config["k"]
    if config["activation"] == "topk":
        values, index = torch.topk(pre, k, dim=-1)
    else:
        values, index = pre.unflatten(-1, (k, -1)).max(dim=-1)
        index = index + torch.arange(0, pre.shape[-1], pre.shape[-1] // k)
    out = torch.nn.functional.embedding_bag(index, t["W_dec"], per_sample_weights=values, mode="sum") + t["b_dec"]
    if "W_skip" in t:
        out = out + x @ t["W_skip"].mT
    return torch.zeros_like(pre).scatter(-1, index, values), out
