"""Encoder-decoder attribution speed: our engine vs a per-token captum loop (Ecco's algorithm), and the same ratio
for a causal model of the same width and depth, in one run. Target (issue 13): the seq2seq ratio at least the
causal one.

Models (random weights, seeded): a T5-small-shaped encoder-decoder (6 + 6 layers, d_model 512, vocab 32128) and a
GPT-2 of 6 layers, 512 wide, same vocabulary. Work: a 34-token source (the causal model: a 34-token prompt) and 20
explained tokens; grad x input and IG (n_steps as given), probability target, zero baseline. Each timing is the
median of --repeats alternating runs (ours, captum, ours, ...) in this process, one thread.

Run: python benchmarks/bench_seq2seq.py [--steps 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import ecco_widgets as ew
from ecco_widgets.models.causal_lm import compute_attributions

N_SOURCE, N_EXPLAINED, VOCAB = 34, 20, 32128


def t5_model():
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8, d_kv=64,
                      vocab_size=VOCAB, decoder_start_token_id=0)
    return ew.seq2seq(T5ForConditionalGeneration(config).eval())


def gpt_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return ew.LanguageModel(GPT2LMHeadModel(GPT2Config(n_layer=6, n_embd=512, n_head=8, vocab_size=VOCAB)).eval())


def ids(n: int, seed: int) -> list[int]:
    return torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def captum_seq2seq(model, source: list[int], decoder: list[int], method: str, n_steps: int) -> np.ndarray:
    """Per decoder token t: captum on (encoder embeds, decoder prefix embeds), softmax of the last logits."""
    from captum.attr import InputXGradient, IntegratedGradients

    emb = model.get_input_embeddings()
    with torch.no_grad():
        xe_all, xd_all = emb(torch.tensor([source])), emb(torch.tensor([decoder]))
    rows = []
    for t in range(1, len(decoder)):
        def f(e, d, token=decoder[t]):
            return model(inputs_embeds=e, decoder_inputs_embeds=d, use_cache=False).logits[:, -1].softmax(-1)[:, token]

        xe, xd = xe_all.clone().requires_grad_(True), xd_all[:, :t].clone().requires_grad_(True)
        if method == "ig":
            ae, ad = IntegratedGradients(f).attribute((xe, xd), n_steps=n_steps, method="gausslegendre")
        else:
            ae, ad = InputXGradient(f).attribute((xe, xd))
        rows.append(ae[0].sum(-1).detach().numpy())
    return np.stack(rows)


def captum_causal(lm, tokens: list[int], positions: np.ndarray, method: str, n_steps: int) -> np.ndarray:
    from captum.attr import InputXGradient, IntegratedGradients

    with torch.no_grad():
        embeddings = lm.spec.embedding(torch.tensor([tokens]))
    rows = []
    for p in positions:
        def f(x, token=tokens[p]):
            return lm.model(inputs_embeds=x, use_cache=False).logits[:, -1].softmax(-1)[:, token]

        x = embeddings[:, :p].clone().requires_grad_(True)
        attr = IntegratedGradients(f).attribute(x, n_steps=n_steps, method="gausslegendre") if method == "ig" \
            else InputXGradient(f).attribute(x)
        rows.append(attr[0].sum(-1).detach().numpy())
    return rows


def median_pair(ours, theirs, repeats: int) -> tuple[float, float, object, object]:
    ours(), theirs()  # warm-up
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours_out = ours()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        their_out = theirs()
        b.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), ours_out, their_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    s2s, lm = t5_model(), gpt_model()
    source, decoder = ids(N_SOURCE, 1), [0] + ids(N_EXPLAINED, 2)
    tokens = ids(N_SOURCE + N_EXPLAINED, 3)
    positions = np.arange(N_SOURCE, N_SOURCE + N_EXPLAINED)
    print(f"| method | seq2seq: ours / captum loop | ratio | causal: ours / captum loop | ratio | max rel. diff "
          f"(seq2seq, source columns) |")
    print("|---|---|---|---|---|---|")
    for method in ("grad_x_input", "ig"):
        n_steps = args.steps

        def ours_s2s():
            out = s2s.analyze_ids(source, decoder, attribution=(method,), n_steps=n_steps, progress=False)
            return out.attributions_raw[method][:, :N_SOURCE].sum(-1)

        def ours_causal():
            return compute_attributions(lm.spec, torch.tensor([tokens]), positions, [method], n_steps=n_steps,
                                        progress=False).raw[method]

        s_ours, s_theirs, a, b = median_pair(ours_s2s, lambda: captum_seq2seq(s2s.model, source, decoder, method,
                                                                               n_steps), args.repeats)
        c_ours, c_theirs, _, _ = median_pair(ours_causal, lambda: captum_causal(lm, tokens, positions, method,
                                                                                n_steps), args.repeats)
        diff = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
        name = method if method != "ig" else f"ig ({n_steps} steps)"
        print(f"| {name} | {s_ours:.2f} s / {s_theirs:.2f} s | {s_theirs / s_ours:.2f}x | {c_ours:.2f} s / "
              f"{c_theirs:.2f} s | {c_theirs / c_ours:.2f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
