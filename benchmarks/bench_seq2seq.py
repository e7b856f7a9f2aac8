"""Encoder-decoder attribution speed: our engine vs a per-token captum loop (Ecco's algorithm), and the same ratio
for a causal model of the same width and depth, in one run. Target (issue 13): the seq2seq ratio at least the
causal one.

Models (random weights, seeded): a T5-small-shaped encoder-decoder (6 + 6 layers, d_model 512, vocab 32128) and a
GPT-2 of 6 layers, 512 wide, same vocabulary. Work: a 34-token source (the causal model: a 34-token prompt) and 20
explained tokens; grad x input and IG (n_steps as given), probability target, zero baseline. "ours" is the engine
alone on both models (``attribute`` on a Seq2SeqFunction / CausalFunction: no capture, no lens). Two loops per
model: Ecco's (the model's full logits at every position of each prefix, then the last one) and a lean one (only
the explained position's logits: ``logits_to_keep=1`` for GPT-2; T5 has no such option, so its lean loop slices the
decoder output before the LM head). Each timing is the median of --repeats alternating runs in this process, one
thread. Prefix grouping (one engine call per group of targets, each on its own decoder prefix) was measured and
loses: 2 / 3 / 4 / 5 groups took 1.11 / 1.23 / 1.38 / 1.55x the one call for grad x input on T5 (IG 8 steps:
0.99 / 1.12 / 1.11 / 1.21x); the extra forwards cost more than the shorter backward passes save.

The last column compares ours with Ecco's loop per element. T5's feed-forward uses ReLU: a pre-activation within
rounding of 0 falls on either side depending on the kernels' summation order, which switches that unit's gradient
on or off, so on one thread (where the frozen-parameter backward of the engine sums in another order than captum's)
the T5 rows differ by up to 5e-3 of the largest value; in float64 they agree to 5e-7 (the float32 output), and
GPT-2 (GELU, smooth) agrees to 5e-6.

Run: python benchmarks/bench_seq2seq.py [--steps 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

import ecco_widgets as ew
from ecco_widgets.analysis.attribution import attribute
from ecco_widgets.models.causal_lm import compute_attributions
from ecco_widgets.models.seq2seq import Seq2SeqFunction

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


def captum_seq2seq(model, source: list[int], decoder: list[int], method: str, n_steps: int,
                   lean: bool = False) -> np.ndarray:
    """Per decoder token t: captum on (encoder embeds, decoder prefix embeds), softmax of the last logits (lean:
    the LM head applied to the last decoder position only)."""
    from captum.attr import InputXGradient, IntegratedGradients

    emb = model.get_input_embeddings()
    with torch.no_grad():
        xe_all, xd_all = emb(torch.tensor([source])), emb(torch.tensor([decoder]))
    rows = []
    for t in range(1, len(decoder)):
        def f(e, d, token=decoder[t]):
            if lean:
                last = model.get_decoder()(inputs_embeds=d, encoder_hidden_states=model.get_encoder()(
                    inputs_embeds=e).last_hidden_state, use_cache=False).last_hidden_state[:, -1]
                if getattr(model.config, "scale_decoder_outputs", False):
                    last = last * model.model_dim ** -0.5
                return model.lm_head(last).softmax(-1)[:, token]
            return model(inputs_embeds=e, decoder_inputs_embeds=d, use_cache=False).logits[:, -1].softmax(-1)[:, token]

        xe, xd = xe_all.clone().requires_grad_(True), xd_all[:, :t].clone().requires_grad_(True)
        if method == "ig":
            ae, ad = IntegratedGradients(f).attribute((xe, xd), n_steps=n_steps, method="gausslegendre")
        else:
            ae, ad = InputXGradient(f).attribute((xe, xd))
        rows.append(ae[0].sum(-1).detach().numpy())
    return np.stack(rows)


def captum_causal(lm, tokens: list[int], positions: np.ndarray, method: str, n_steps: int,
                  lean: bool = False) -> np.ndarray:
    """Per explained token: captum on the prefix embeddings, softmax of the last logits (lean: logits_to_keep=1)."""
    from captum.attr import InputXGradient, IntegratedGradients

    with torch.no_grad():
        embeddings = lm.spec.embedding(torch.tensor([tokens]))
    rows = []
    keep = {"logits_to_keep": 1} if lean else {}
    for p in positions:
        def f(x, token=tokens[p]):
            return lm.model(inputs_embeds=x, use_cache=False, **keep).logits[:, -1].softmax(-1)[:, token]

        x = embeddings[:, :p].clone().requires_grad_(True)
        attr = IntegratedGradients(f).attribute(x, n_steps=n_steps, method="gausslegendre") if method == "ig" \
            else InputXGradient(f).attribute(x)
        rows.append(attr[0].sum(-1).detach().numpy())
    return rows


def medians(runs: dict, repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Median seconds of each callable, run in turn (a, b, c, a, b, c, ...) after one warm-up each, and the last
    outputs."""
    outputs = {name: run() for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, outputs


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


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
    source_t, decoder_t = torch.tensor([source]), torch.tensor([decoder])
    print("| method | model | ours (engine) | Ecco's loop (all logits) | ratio | lean loop (explained logits) | ratio "
          "| max rel. diff ours / loop |")
    print("|---|---|---|---|---|---|---|---|")
    for method in ("grad_x_input", "ig"):
        n_steps = args.steps

        def ours_s2s():
            function = Seq2SeqFunction(s2s.seq2seq_spec, source_t, decoder_t, np.arange(1, len(decoder)), "prob")
            raw = attribute(function, s2s.model, [method], n_steps, progress=False).raw[method]
            return raw[:, :N_SOURCE].sum(-1)

        def ours_causal():
            raw = compute_attributions(lm.spec, torch.tensor([tokens]), positions, [method], n_steps=n_steps,
                                       progress=False).raw[method]
            return [raw[i, :p].sum(-1) for i, p in enumerate(positions)]

        s2s_runs = {"ours": ours_s2s,
                    "loop": lambda: captum_seq2seq(s2s.model, source, decoder, method, n_steps),
                    "lean": lambda: captum_seq2seq(s2s.model, source, decoder, method, n_steps, lean=True)}
        causal_runs = {"ours": ours_causal,
                       "loop": lambda: captum_causal(lm, tokens, positions, method, n_steps),
                       "lean": lambda: captum_causal(lm, tokens, positions, method, n_steps, lean=True)}
        name = method if method != "ig" else f"ig ({n_steps} steps)"
        for model, runs in (("T5-small-shaped", s2s_runs), ("GPT-2 6 x 512", causal_runs)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ew.CompletenessWarning)  # the zero baseline on random weights
                t, out = medians(runs, args.repeats)
            if model.startswith("GPT"):
                diff = max(rel_diff(o, l) for o, l in zip(out["ours"], out["loop"]))
            else:
                diff = rel_diff(out["ours"], out["loop"])
            print(f"| {name} | {model} | {t['ours']:.2f} s | {t['loop']:.2f} s | {t['loop'] / t['ours']:.2f}x | "
                  f"{t['lean']:.2f} s | {t['lean'] / t['ours']:.2f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
