"""Runs in TransformerLens' venv (.venv-sae or .venv-tl): each job's HF model folder (written by check_dla.py: random
weights saved with save_pretrained) loaded into a HookedTransformer as TransformerLens loads a pretrained model, then
its direct logit attribution of target - foil at one position, the way TransformerLens users compute it
(run_with_cache; cache.decompose_resid / cache.stack_head_results; cache.logit_attrs, which applies the final norm's
cached scale through apply_ln_to_stack); writes the numbers as JSON. Called by check_dla.py.

HookedTransformer.from_pretrained takes only an official model name and asks the hub for its config (gpt2) or knows
it by name (meta-llama/Llama-3.2-1B): job["official"] names one, tried first with hf_model= the random model, and
job["official_error"] records why it could not run offline. Then the folder goes through from_pretrained's own steps
for a local folder: loading_from_pretrained.get_pretrained_model_config(folder) (transformers' config.json read by
TransformerLens' convert_hf_model_config), get_pretrained_state_dict (its weight conversion for the architecture),
HookedTransformer(cfg) and load_and_process_state_dict with from_pretrained's defaults (fold_ln, center_writing_weights,
center_unembed) except fold_value_biases=False: folding moves each head's value bias into the layer's b_O, so the
per-head numbers would then differ from the heads' actual outputs (the per-layer numbers are the same either way).
"""

from __future__ import annotations

import json
import sys
import traceback

import torch


def load(job: dict):
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens import HookedTransformer
    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(job["folder"], dtype=torch.float32).eval()
    if job.get("official"):
        try:
            tokenizer = None
            if job.get("tokenizer"):  # a local tokenizer: TransformerLens would fetch the official one from the hub
                from transformers import AutoTokenizer
                tokenizer = AutoTokenizer.from_pretrained(job["tokenizer"])
            model = HookedTransformer.from_pretrained(job["official"], hf_model=hf_model, fold_value_biases=False,
                                                      device="cpu", tokenizer=tokenizer)
            return model, "from_pretrained(official name)"
        except Exception as error:  # offline: the config of a name-less model comes from the hub
            job["official_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    cfg = loading.get_pretrained_model_config(job["folder"], fold_ln=True, device="cpu")
    cfg.tokenizer_name = None  # token ids go in; a random model's folder has no tokenizer
    state_dict = loading.get_pretrained_state_dict(job["folder"], cfg, hf_model)
    model = HookedTransformer(cfg, None, move_to_device=False)
    model.load_and_process_state_dict(state_dict, fold_ln=True, center_writing_weights=True, center_unembed=True,
                                      fold_value_biases=False)
    return model.eval(), "local folder: get_pretrained_model_config + get_pretrained_state_dict"


def run(job: dict) -> dict:
    model, how = load(job)
    tokens = torch.tensor([job["tokens"]])
    position, target, foil = job["position"], torch.tensor([job["target"]]), torch.tensor([job["foil"]])
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
        resid, labels = cache.decompose_resid(layer=-1, mode="all", pos_slice=position, return_labels=True)
        per_component = cache.logit_attrs(resid, tokens=target, incorrect_tokens=foil, pos_slice=position)
        heads, head_labels = cache.stack_head_results(layer=-1, pos_slice=position, return_labels=True)
        per_head = cache.logit_attrs(heads, tokens=target, incorrect_tokens=foil, pos_slice=position)
    row = logits[0, position]
    return {"how": how, "labels": labels, "values": per_component[:, 0].tolist(), "head_labels": head_labels,
            "heads": per_head[:, 0].tolist(), "logit_diff": float(row[job["target"]] - row[job["foil"]]),
            "n_heads": model.cfg.n_heads, "official": job.get("official"),
            "official_error": job.get("official_error")}


def main() -> None:
    jobs = json.loads(open(sys.argv[1]).read())
    report = {}
    for job in jobs:
        try:
            report[job["id"]] = run(job)
        except Exception:
            report[job["id"]] = {"error": traceback.format_exc()[-3000:]}
    with open(sys.argv[2], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
