"""Logit-lens ranks: ours vs (a) the naive per-layer, per-position argsort loop and (b) the bare forward pass plus
one stacked unembedding, all measured in this run. Targets: >= 10x faster than (a), <= 1.5x of (b).

Run: python benchmarks/bench_ranks.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

sys.path.insert(0, str(Path(__file__).parent))
import ecco_widgets as ew  # noqa: E402
from _timing import median_seconds  # noqa: E402
from ecco_widgets.analysis.lens import logit_lens  # noqa: E402
from ecco_widgets.capture import capture  # noqa: E402

TEXT = ("The keys to the cabinet are on the table next to the window, where the old clock used to stand before "
        "the family moved to the city and sold most of the furniture they had collected over the years, keeping only a few "
        "books and a painting of the sea.")


def ours(lm, input_ids, metrics: bool = True):
    """The capture + the lens (ranks, top-10, target probabilities; entropy and KL to the last layer if metrics)."""
    cap = capture(lm.spec, input_ids)
    targets = torch.cat([input_ids[0, 1:], input_ids.new_zeros(1)])
    return logit_lens(lm.spec.decode, cap.hidden[1:], targets, final_logits=cap.logits, metrics=metrics).ranks[:, :-1]


def naive_loop(lm, input_ids):
    """Ecco's way: per layer and position, decode one vector and argsort the whole vocabulary."""
    with torch.inference_mode():
        hidden = lm.model(input_ids, output_hidden_states=True).hidden_states
        n = input_ids.shape[1]
        ranks = np.zeros((lm.spec.n_layers, n - 1), dtype=np.int64)
        for layer in range(lm.spec.n_layers):
            for position in range(n - 1):
                h = hidden[layer + 1][0, position]
                logits = lm.model.get_output_embeddings()(h) if layer == lm.spec.n_layers - 1 else lm.spec.decode(h)
                order = torch.argsort(logits, descending=True)
                ranks[layer, position] = int((order == input_ids[0, position + 1]).nonzero()[0, 0]) + 1
    return ranks


def forward_plus_unembedding(lm, input_ids):
    with torch.inference_mode():
        hidden = lm.model(input_ids, output_hidden_states=True).hidden_states
        return lm.spec.decode(torch.stack(hidden[1:])[:, 0])


def bench(name: str, lm, ids: list[int]) -> dict[str, float]:
    input_ids = torch.tensor([ids])
    torch.manual_seed(0)
    ranks_ours = ours(lm, input_ids)
    ranks_naive = naive_loop(lm, input_ids)
    agree = float((ranks_ours == ranks_naive).mean())
    t_ours = median_seconds(lambda: ours(lm, input_ids), repeats=5)
    t_naive = median_seconds(lambda: naive_loop(lm, input_ids), repeats=1, warmup=0)
    t_bare = median_seconds(lambda: forward_plus_unembedding(lm, input_ids), repeats=5)
    t_plain = median_seconds(lambda: ours(lm, input_ids, metrics=False), repeats=5)
    print(f"{name:<28} tokens={len(ids):>3} layers={lm.spec.n_layers:>2}  ours {t_ours * 1e3:8.1f} ms  "
          f"naive loop {t_naive * 1e3:9.1f} ms  forward+unembed {t_bare * 1e3:8.1f} ms  "
          f"speed-up vs loop {t_naive / t_ours:6.1f}x (target >= 10)  "
          f"ours / bare {t_ours / t_bare:5.2f}x (target <= 1.5)  ranks agree {agree:.4f}  "
          f"without entropy/KL {t_plain * 1e3:8.1f} ms: metrics add {t_ours / t_plain - 1:6.1%} (target <= 15 %)")
    return {"speedup_vs_loop": t_naive / t_ours, "ratio_vs_bare": t_ours / t_bare}


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lm = ew.demo_model()
    ids = lm.encode(TEXT)[:50]
    bench("SmolLM2-135M (bundled)", lm, ids)
    torch.manual_seed(0)
    distil = GPT2LMHeadModel(GPT2Config(n_layer=6, n_embd=768, n_head=12, vocab_size=50257)).eval()
    bench("distilgpt2-shaped (random)", ew.LanguageModel(distil), ids)


if __name__ == "__main__":
    main()
