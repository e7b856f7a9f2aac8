"""GPU check (not part of `make test`; run by hand on a machine with CUDA): bf16 at ~1B parameters.

Builds a random-weight Llama-shaped model of about 1B parameters in bfloat16 on the GPU (no hub), and prints, in
under 5 minutes on one GPU:

1. rank agreement of the logit lens with the same weights in float32 (share of equal rank cells, share within a
   factor 2), and whether the last lens row equals the model's own ranks exactly;
2. time and peak GPU memory of analyze (lens), generate of 20 tokens after a 500-token prompt, grad x input and
   IG (16 steps) of those 20 tokens;
3. the same on the CPU-sized model (SmolLM2-shaped, random) on the GPU, for comparison.

Usage: python benchmarks/gpu_check.py [--layers 16] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def llama(hidden: int, layers: int, heads: int, kv_heads: int, inter: int, vocab: int, dtype, device):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, intermediate_size=inter, vocab_size=vocab,
                         max_position_embeddings=2048, tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    return model


def timed(fn):
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return result, time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30


def run(name: str, model, n_prompt: int, n_generate: int, ig_steps: int) -> None:
    import ecco_widgets as ew

    lm = ew.from_pretrained(model, device=None)
    rng = np.random.default_rng(0)
    vocab = model.config.vocab_size
    prompt = rng.integers(10, vocab, n_prompt).tolist()
    n_params = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"\n## {name}: {n_params:.2f} B parameters, {model.dtype}, {lm.device}")
    out, seconds, peak = timed(lambda: lm.analyze_ids(prompt, progress=False))
    print(f"analyze {n_prompt} tokens (lens, all layers): {seconds:6.2f} s, peak {peak:5.2f} GiB")
    with torch.inference_mode():
        generated = model.generate(torch.tensor([prompt], device=lm.device), max_new_tokens=n_generate,
                                   do_sample=False, pad_token_id=0)[0].tolist()
    _, seconds, peak = timed(lambda: lm.analyze_ids(generated, n_input_tokens=n_prompt, progress=False))
    print(f"analyze prompt + {n_generate} generated: {seconds:6.2f} s, peak {peak:5.2f} GiB")
    for method, steps in (("grad_x_input", None), ("ig", ig_steps)):
        _, seconds, peak = timed(lambda: lm.analyze_ids(generated, n_input_tokens=n_prompt, attribution=(method,),
                                                        n_steps=steps, progress=False))
        print(f"{method:12} of {n_generate} tokens after {n_prompt}: {seconds:6.2f} s, peak {peak:5.2f} GiB")
    return out


def agreement(model_bf16, n_tokens: int) -> None:
    import ecco_widgets as ew

    rng = np.random.default_rng(1)
    ids = rng.integers(10, model_bf16.config.vocab_size, n_tokens).tolist()
    low = ew.from_pretrained(model_bf16, device=None).analyze_ids(ids, progress=False)
    with torch.inference_mode():
        own = model_bf16(torch.tensor([ids], device=model_bf16.device)).logits[0].float()
    own_ranks = (own[:-1] > own[:-1].gather(-1, torch.tensor(ids[1:], device=own.device)[:, None])).sum(-1) + 1
    model_fp32 = model_bf16.float()
    high = ew.from_pretrained(model_fp32, device=None).analyze_ids(ids, progress=False)
    model_fp32.to(torch.bfloat16)
    equal = float((low.ranks == high.ranks).mean())
    close = float((np.abs(np.log2(low.ranks) - np.log2(high.ranks)) <= 1).mean())
    exact = bool((low.ranks[-1] == own_ranks.cpu().numpy()).all())
    print(f"bf16 vs float32 lens over {n_tokens} tokens: equal cells {equal:.1%}, within 2x {close:.1%}; "
          f"last row equals the model's own ranks: {exact}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="100-token prompt, 5 generated tokens")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device: this check needs a GPU (CI never runs it).")
        return
    n_prompt, n_generate = (100, 5) if args.quick else (500, 20)
    big = llama(2048, args.layers, 32, 8, 8192, 32000, torch.bfloat16, "cuda")
    agreement(big, 128)
    run("Llama-shaped ~1B, bfloat16", big, n_prompt, n_generate, 16)
    del big
    torch.cuda.empty_cache()
    small = llama(576, 30, 9, 3, 1536, 49152, torch.bfloat16, "cuda")
    run("SmolLM2-shaped 135M, bfloat16", small, n_prompt, n_generate, 16)


if __name__ == "__main__":
    main()
