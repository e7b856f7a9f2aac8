"""Writing a dictionary in SAELens' layout (``cfg.json`` + ``sae_weights.safetensors``, as SAELens 6's
``save_model`` writes them), so that SAELens itself loads it and :meth:`SAE.load` reads it back exactly.

Written: standard, topk and jumprelu SAEs without input normalisation (training folds its scale into the weights).

>>> import tempfile, torch
>>> from ecco_widgets.analysis.features import SAE
>>> sae = SAE(W_enc=torch.eye(2), W_dec=torch.eye(2), b_enc=torch.zeros(2), b_dec=torch.zeros(2),
...           architecture="topk", k=1, site={"hook_name": "blocks.0.hook_resid_post"})
>>> folder = save_saelens(sae, tempfile.mkdtemp(), {"trained_by": "ecco_widgets"})
>>> SAE.load(folder).k, SAE.load(folder).site["hook_name"]
(1, 'blocks.0.hook_resid_post')
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ...errors import InputError
from .saelens import CONFIG_FILE, WEIGHTS_FILE

SAELENS_VERSION = "6.54.12"  # the layout written is the one this SAELens version reads (benchmarks/check_sae_formats.py)
_NAMES = {"standard": ("W_enc", "W_dec", "b_enc", "b_dec"), "topk": ("W_enc", "W_dec", "b_enc", "b_dec"),
          "jumprelu": ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")}


def saelens_config(sae: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The cfg.json of ``sae``: its sizes and rule, and metadata (its site keys, then ``metadata``)."""
    if sae.architecture not in _NAMES or sae.transcoder or sae.normalization != "none" or sae.W_skip is not None \
            or sae.rescale_acts_by_decoder_norm:
        raise InputError(f"Only standard, topk and jumprelu SAEs without input normalisation are written in SAELens' "
                         f"layout; this one is {sae!r}.")
    meta = {k: v for k, v in (sae.site or {}).items() if v is not None}
    meta.update(metadata or {})
    meta.setdefault("sae_lens_version", SAELENS_VERSION)
    meta.setdefault("sae_lens_training_version", SAELENS_VERSION)
    config: dict[str, Any] = {"architecture": sae.architecture, "d_in": sae.d_in, "d_sae": sae.d_sae,
                              "dtype": str(sae.dtype).replace("torch.", ""), "device": "cpu",
                              "apply_b_dec_to_input": bool(sae.apply_b_dec_to_input),
                              "normalize_activations": "none", "reshape_activations": "none", "metadata": meta}
    if sae.architecture == "topk":
        config.update(k=int(sae.k), rescale_acts_by_decoder_norm=False)
    return config


def save_saelens(sae: Any, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Writes ``folder``/cfg.json and sae_weights.safetensors (each through a temporary file, then renamed, so an
    interrupted write never leaves half a file); returns the folder."""
    folder = Path(folder)
    config = saelens_config(sae, metadata)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {n: getattr(sae, n).detach().cpu().contiguous() for n in _NAMES[sae.architecture]}
    if any(t is None for t in tensors.values()):
        raise InputError(f"This {sae.architecture} SAE lacks {', '.join(n for n, t in tensors.items() if t is None)}.")
    _atomic(folder / WEIGHTS_FILE, lambda p: save_file(tensors, str(p)))
    _atomic(folder / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=2, default=_plain)))
    return folder


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return float(value) if hasattr(value, "__float__") else str(value)


def _atomic(path: Path, write: Any) -> None:
    temporary = path.with_name(path.name + ".part")
    write(temporary)
    os.replace(temporary, path)
