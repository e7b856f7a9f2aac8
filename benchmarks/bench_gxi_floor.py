"""The floor of "generate 20 + grad × input" on the bundled SmolLM2 (not a test: prints numbers, asserts nothing).

Issue 13 asks for generate + grad × input >= 3x Ecco 0.1.2 end to end. This measures, in one process, what any
tool must spend on that work, with nothing of ours in it but the model: transformers' own greedy ``generate`` of
20 tokens after a 34-token prompt, then the least autograd can do for 20 input-gradient rows: one forward over the
54 tokens with the embeddings requiring grad, and the 20 backward passes as ONE batched vector-Jacobian product
(``torch.autograd.grad(..., is_grads_batched=True)``), each target's logit at the position before it. Also timed:
the same 20 backward passes one by one (``retain_graph``), and ``lm.generate(attribution="grad_x_input")`` itself.

Run: ``python benchmarks/bench_gxi_floor.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ecco_widgets as ew  # noqa: E402

from benchmarks._vs_ecco_worker import PROMPT  # noqa: E402  (the 34-token prompt bench_vs_ecco.py uses)

N_NEW = 20


def _time(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    lm = ew.demo_model()
    model, tok = lm.model, lm.tokenizer
    ids = tok(PROMPT, return_tensors="pt").input_ids
    print(f"threads {torch.get_num_threads()}, prompt {ids.shape[1]} tokens, {N_NEW} new")

    def hf_generate():
        with torch.no_grad():
            return model.generate(ids, max_new_tokens=N_NEW, do_sample=False, min_new_tokens=N_NEW)

    t_gen, seq = _time(hf_generate, args.repeats)
    seq = seq[:, : ids.shape[1] + N_NEW]
    n = seq.shape[1]
    pos = torch.arange(n - N_NEW - 1, n - 1)  # the position before each generated token
    targets = seq[0, n - N_NEW:]
    emb = model.get_input_embeddings()
    for p in model.parameters():
        p.requires_grad_(False)

    def forward():
        x = emb(seq).detach().requires_grad_(True)
        logits = model(inputs_embeds=x).logits[0, pos, targets]  # (20,)
        return x, logits

    def batched():
        x, f = forward()
        (g,) = torch.autograd.grad(f, x, grad_outputs=torch.eye(N_NEW), is_grads_batched=True)
        return (g * x.detach()).norm(dim=-1)

    def one_by_one():
        x, f = forward()
        rows = [torch.autograd.grad(f[i], x, retain_graph=i < N_NEW - 1)[0] for i in range(N_NEW)]
        return (torch.stack(rows) * x.detach()).norm(dim=-1)

    t_fwd, _ = _time(lambda: forward()[1].sum().item(), args.repeats)
    t_batched, a = _time(batched, args.repeats)
    t_loop, b = _time(one_by_one, args.repeats)
    print(f"max |batched - one by one| {float((a - b).abs().max()):.2e}")
    t_ours, _ = _time(lambda: lm.generate(PROMPT, max_new_tokens=N_NEW, attribution="grad_x_input", progress=False),
                      args.repeats)
    print(f"HF generate {N_NEW} tokens:                     {t_gen:6.2f} s")
    print(f"one forward over {n} tokens (grad on inputs):  {t_fwd:6.2f} s")
    print(f"forward + {N_NEW} backward, batched (floor):        {t_batched:6.2f} s")
    print(f"forward + {N_NEW} backward, one by one:             {t_loop:6.2f} s")
    print(f"floor of the work: HF generate + batched         {t_gen + t_batched:6.2f} s")
    print(f"lm.generate(attribution='grad_x_input'):         {t_ours:6.2f} s  "
          f"({t_ours / (t_gen + t_batched):.2f}x the floor)")


if __name__ == "__main__":
    main()
