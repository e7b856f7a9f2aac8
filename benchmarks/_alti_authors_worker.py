"""Runs in .venv-alti, in a copy of the authors' repository (mt-upc/logit-explanations, the cwd): ALTI-Logit by the
authors' own code, on the model check_alti.py wrote. Writes, for each case, the model's logits of the target and
foil at the last row (to show that both sides run the same weights) and, per layer, the authors' logit update per
source token (``logit_aff_x_j``) and the same traced to the input through ALTI (``logit_aff_x_j_alti``), for the
target and for the foil, as JSON.

The calls are the ones in the authors' extract_explanations.py: ``ModelWrapper(model)(inputs)``,
``get_logit_contributions(hidden_states, attentions, [target, foil])``, ``utils_contributions.compute_alti`` and
``track2input_tokens(..., ["aff_x_j"], ...)``. The model is built from its config in this venv's transformers 4
and the weights loaded from the safetensors file; every parameter must load.

Two settings: the authors' code as it is ("as is"), and with ``torch.nn.functional.pairwise_distance``'s ``eps``
(1e-6, added to every component of the difference before ALTI's L1 distance) set to 0 ("eps 0"), the plain
definition, which ecco_widgets computes.
"""

from __future__ import annotations

import functools
import json
import re
import sys

import torch
import torch.nn.functional as F


def build(job: dict) -> torch.nn.Module:
    import transformers
    from safetensors.torch import load_file

    config = getattr(transformers, job["config_class"])(**job["config"])
    model = getattr(transformers, job["model_class"])(config)
    missing, unexpected = model.load_state_dict(load_file(job["weights"]), strict=False)
    # buffers of transformers 4 (GPT-2's causal mask) and the unembedding tied to the embedding
    allowed = re.compile(r"(\.attn\.(bias|masked_bias)|lm_head\.weight)$")
    bad = [k for k in missing if not allowed.search(k)]
    if bad or unexpected:
        raise SystemExit(f"weights do not match the model: missing {bad}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval()


def main() -> None:
    job = json.loads(sys.argv[1])
    sys.path.insert(0, ".")
    import src.utils_contributions as utils_contributions  # before extract_explanations (a circular import)
    from extract_explanations import track2input_tokens
    from src.contributions import ModelWrapper

    model = build(job)
    wrapped = ModelWrapper(model)
    original = F.pairwise_distance
    results = {}
    try:
        results["as is"] = explain(job, wrapped, utils_contributions.compute_alti, track2input_tokens)
        F.pairwise_distance = functools.partial(original, eps=0.0)
        results["eps 0"] = explain(job, wrapped, utils_contributions.compute_alti, track2input_tokens)
    finally:
        F.pairwise_distance = original
    with open(job["output"], "w") as handle:
        json.dump(results, handle)


def explain(job: dict, wrapped, compute_alti, track2input_tokens) -> list[dict]:
    """The authors' explanation of each case (see the module docstring)."""
    results = []
    for case in job["cases"]:
        ids = torch.tensor([case["ids"]])
        logits, hidden_states, attentions = wrapped({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        token = [case["target"], case["foil"]]
        vectors, _, layer_alti_data = wrapped.get_logit_contributions(hidden_states, attentions, token)
        mixed = compute_alti(layer_alti_data)
        tracked = track2input_tokens(vectors, ["aff_x_j"], mixed, token)
        results.append({
            "logits": [float(logits[0, -1, t]) for t in token],
            "layers": [t.tolist() for t in tracked["logit_aff_x_j"]],  # [target, foil]: (n_layers, n_tokens)
            "rolled": [t.tolist() for t in tracked["logit_aff_x_j_alti"]],
        })
    return results


if __name__ == "__main__":
    main()
