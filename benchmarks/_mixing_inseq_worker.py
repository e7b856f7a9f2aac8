"""Runs in inseq's venv (.venv-inseq): value zeroing of each generated token of job["text"] (the part after
job["prompt"]) by inseq itself, on the model folder check_mixing.py wrote; writes the token ids, the explained
positions and, per layer, the normalised row of the position before each explained token, as JSON.

The model (AutoModelForCausalLM from the folder, its tokenizer.json as a fast tokenizer) goes through
inseq.load_model(model, "value_zeroing", tokenizer=...) and model.attribute(prompt, text,
attribute_target=True), as inseq's users run it. Two settings are recorded: inseq's own (scores below its
min_score_threshold, 1e-5, set to 0 before normalising) and the threshold set to 0 (the plain definition), the latter by
giving ValueZeroing.compute_modules_post_zeroing_similarity that default. Where inseq's model config names a value
variable the installed transformers no longer uses (GPT-2: "value", now "value_states"), it is registered anew with
the current name, or inseq would zero nothing.
"""

from __future__ import annotations

import functools
import json
import sys

import torch


def run(job: dict, threshold: float | None) -> dict:
    import inseq
    from inseq.attr.feat.ops.value_zeroing import ValueZeroing

    original = ValueZeroing.compute_modules_post_zeroing_similarity
    if threshold is not None:
        ValueZeroing.compute_modules_post_zeroing_similarity = functools.partialmethod(
            original, min_score_threshold=threshold)
    try:
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

        # the tokenizer as a plain fast tokenizer: transformers 5 saved it under a class name version 4 lacks
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{job['folder']}/tokenizer.json", pad_token="<|endoftext|>",
                                            eos_token="<|endoftext|>", bos_token="<|endoftext|>")
        hf_model = AutoModelForCausalLM.from_pretrained(job["folder"], torch_dtype=torch.float32).eval()
        model = inseq.load_model(hf_model, "value_zeroing", tokenizer=tokenizer)
        out = model.attribute(job["prompt"], job["text"], attribute_target=True, show_progress=False)
    finally:
        ValueZeroing.compute_modules_post_zeroing_similarity = original
    seq = out.sequence_attributions[0]
    ids = [t.id for t in seq.target]
    scores = seq.target_attributions.float()  # (n_tokens, n_steps, n_layers): source token, explained token, layer
    n_steps = scores.shape[1]
    positions = list(range(len(ids) - n_steps, len(ids)))
    layers = torch.nan_to_num(scores, nan=0.0).permute(2, 1, 0)  # (n_layers, n_steps, n_tokens)
    return {"ids": ids, "positions": positions, "layers": layers.tolist(), "shape": list(scores.shape)}


def main() -> None:
    job = json.loads(sys.argv[1])
    import inspect

    from inseq.models.model_config import register_model_config
    from transformers.models.gpt2 import modeling_gpt2

    if "value_states = " in inspect.getsource(modeling_gpt2.GPT2Attention.forward):
        register_model_config("GPT2LMHeadModel", {"self_attention_module": "attn", "value_vector": "value_states"},
                              overwrite=True, allow_partial=True)
    result = {"default": run(job, None), "no_threshold": run(job, 0.0)}
    with open(job["output"], "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
