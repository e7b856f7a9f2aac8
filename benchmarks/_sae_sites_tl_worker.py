"""Runs in TransformerLens' venv (.venv-sae or .venv-tl): each job's HF model folder (random weights written by
check_sae_sites.py) loaded into a HookedTransformer with from_pretrained's processing (fold_ln,
center_writing_weights, center_unembed; as benchmarks/_dla_tl_worker.py loads a local folder), then run_with_cache
on the job's token ids (with hook_mlp_in switched on); writes each asked-for hook's cached value, (n_tokens, width)
(attn.hook_z flattened head-major, as SAELens reads it), as JSON. Called by check_sae_sites.py.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import torch


def load(folder: str):
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens import HookedTransformer
    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    cfg = loading.get_pretrained_model_config(folder, fold_ln=True, device="cpu")
    cfg.tokenizer_name = None
    state_dict = loading.get_pretrained_state_dict(folder, cfg, hf_model)
    model = HookedTransformer(cfg, None, move_to_device=False)
    model.load_and_process_state_dict(state_dict, fold_ln=True, center_writing_weights=True, center_unembed=True)
    model.set_use_hook_mlp_in(True)
    return model.eval()


def run(job: dict) -> dict:
    model = load(job["folder"])
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([job["tokens"]]))
    values = {}
    for name in job["hooks"]:
        x = cache[name][0]
        values[name] = x.reshape(x.shape[0], -1).tolist()
    return {"values": values, "normalization": model.cfg.normalization_type}


def safely(job: dict) -> dict:
    try:
        return run(job)
    except Exception:  # reported in the table, the other model still runs
        return {"error": traceback.format_exc()[-3000:]}


if __name__ == "__main__":
    jobs = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps({job["id"]: safely(job) for job in jobs}))
