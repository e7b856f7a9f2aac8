"""Runs in .venv-sae (sae-lens, eai-sparsify): each job's folder loaded with its producer's own loader, x encoded and
decoded with the producer's own classes; writes {acts, recon} per job. Called by check_sae_formats.py.

Gemma Scope folders have no disk loader in SAELens: its hub loaders (gemma_2_sae_huggingface_loader for params.npz,
gemma_3_sae_huggingface_loader for params.safetensors) run as they are, with hf_hub_download and the header read of
get_safetensors_tensor_shapes pointed at the local folder.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def saelens(job: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from sae_lens import SAE

    sae = SAE.load_from_disk(job["folder"], device="cpu")
    if job.get("scale_factor") is not None:
        sae.fold_activation_norm_scaling_factor(job["scale_factor"])
    with torch.no_grad():
        return sae.encode(x), sae(x)


def sparsify(job: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from sparsify import SparseCoder

    coder = SparseCoder.load_from_disk(job["folder"], device="cpu")
    with torch.no_grad():
        top_acts, top_indices, pre_acts = coder.encode(x.to(coder.dtype))
        acts = torch.zeros_like(pre_acts).scatter_(-1, top_indices, top_acts)
        return acts, coder(x.to(coder.dtype)).sae_out


def gemma_scope(job: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import sae_lens.loading.pretrained_sae_loaders as loaders
    from sae_lens import SAE

    root = Path(job["root"])

    def local_download(repo_id, filename, subfolder=None, **_):
        return str(root / subfolder / filename if subfolder else root / filename)

    def local_shapes(repo_id, filename):
        with safe_open(str(root / filename), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118

    loaders.hf_hub_download = local_download
    loaders.get_safetensors_tensor_shapes = local_shapes
    if job["fmt"] == "gemma_scope":
        repo, base = "google/gemma-scope-2b-pt-res", loaders.gemma_2_sae_huggingface_loader
        extra = {"d_in": x.shape[-1], "d_sae": job["d_sae"]}  # its config comes from the repository's name
    else:
        repo, base, extra = "google/gemma-scope-2-270m-pt", loaders.gemma_3_sae_huggingface_loader, {}

    def converter(**kwargs):
        return base(**{**kwargs, "cfg_overrides": {**(kwargs.get("cfg_overrides") or {}), **extra}})

    sae = SAE.from_pretrained(repo, job["sub"], device="cpu", converter=converter)
    with torch.no_grad():
        return sae.encode(x), sae(x)


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    report = {}
    for job in jobs:
        try:
            x = load_file(job["x"])["x"]
            run = {"saelens": saelens, "sparsify": sparsify}.get(job["fmt"], gemma_scope)
            acts, recon = run(job, x)
            save_file({"acts": acts.contiguous(), "recon": recon.contiguous()}, job["out"])
            report[job["id"]] = "ok"
        except Exception as error:  # recorded in the table, the other jobs go on
            report[job["id"]] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
    Path(sys.argv[2]).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
