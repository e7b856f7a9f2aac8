"""Context mixing on SmolLM2-135M (the bundled demo model, float32): the cost of value zeroing and the memory of
ALTI-Logit (issue 28).

- value zeroing over every layer, 200 source tokens (the last of 201 tokens of pydoc_data.topics['for'] explained):
  the method alone (``compute_attributions(..., ["value_zeroing"])``) against the time of (layers x tokens) full
  forwards / 4, the forward timed over the same 200 tokens in the same run (the fastest of the forwards timed just
  before and just after, so that a busy machine inflates the method's time, not the reference). Target: ratio <= 1.
- ALTI-Logit at 2,000 tokens (``--alti-tokens``), the last one explained: the peak resident memory of the call (RSS
  peak from ``resource.getrusage``) above the process's resident memory with the model loaded, in a fresh subprocess
  so earlier work does not hide it. It includes the call's two forwards (one with eager attention: one layer's
  weights at a time). ``--alti-layers N`` keeps SmolLM2's first N blocks (N/30 of the time; measured: the peak still
  grows by ~13-20 MiB per layer, see docs/components.md, so the default, all 30, is the number to quote).

Run: python benchmarks/bench_mixing.py [--tokens 200] [--alti-tokens 2000] [--repeats 3] [--alti-layers N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from pydoc_data.topics import topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ecco_widgets as ew  # noqa: E402
from ecco_widgets.models.causal_lm import compute_attributions  # noqa: E402


def text_ids(lm, n: int) -> list[int]:
    ids: list[int] = []
    for key in ("for", "while", "if", "try", "with", "def", "class", "function", "assignment", "import"):
        ids += lm.encode(topics[key])
        if len(ids) >= n:
            return ids[:n]
    raise SystemExit(f"pydoc topics give only {len(ids)} tokens")


def value_zeroing_ratio(lm, n: int, repeats: int) -> dict:
    ids = torch.tensor([text_ids(lm, n + 1)])
    prefix = ids[:, :n]

    def forwards() -> list[float]:
        times = []
        with torch.inference_mode():
            for _ in range(max(3, repeats)):
                start = time.perf_counter()
                lm.model(prefix, use_cache=False)
                times.append(time.perf_counter() - start)
        return times

    forwards()  # warm-up
    before = forwards()
    start = time.perf_counter()
    compute_attributions(lm.spec, ids, [n], ["value_zeroing"], progress=False)
    zeroing = time.perf_counter() - start
    forward = min(before + forwards())  # the least disturbed forward: the reference errs on the small side
    budget = lm.spec.n_layers * n * forward / 4
    return {"tokens": n, "layers": lm.spec.n_layers, "forward_s": forward, "value_zeroing_s": zeroing,
            "reference_s": budget, "ratio": zeroing / budget}


def alti_memory(n: int, layers: int = 0) -> dict:
    """Run in a fresh process: peak RSS of ALTI-Logit over a plain eager forward's peak, in MiB. layers > 0 keeps only
    SmolLM2's first ``layers`` blocks (a shorter run; the peak is then lower, see the module docstring)."""
    lm = ew.demo_model()
    if layers:
        lm.model.model.layers = lm.model.model.layers[:layers]
        lm.model.config.num_hidden_layers = layers
        lm = ew.from_pretrained(lm.model, tokenizer=lm.tokenizer)
    ids = torch.tensor([text_ids(lm, n + 1)])
    loaded = resident_mib()
    start = time.perf_counter()
    compute_attributions(lm.spec, ids, [n], ["alti_logit"], progress=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    d_model, heads = int(lm.spec.embedding.weight.shape[-1]), int(lm.model.config.num_attention_heads)
    return {"tokens": n, "layers": lm.spec.n_layers, "peak_rss_mib": peak, "loaded_mib": loaded,
            "alti_above_mib": peak - loaded, "attention_weights_mib": heads * n * n * 4 / 2**20,
            "logits_mib": n * lm.vocab_size * 4 / 2**20, "d_model": d_model, "alti_s": seconds}


def resident_mib() -> float:
    """The process's resident memory now, MiB (Linux /proc)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--alti-tokens", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-alti", action="store_true", help="value zeroing only")
    parser.add_argument("--alti-layers", type=int, default=0, help="ALTI memory with the first N blocks only (0: all)")
    parser.add_argument("--alti-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.alti_child:
        print(json.dumps(alti_memory(args.alti_child, args.alti_layers)))
        return
    lm = ew.demo_model()
    print(f"SmolLM2-135M float32, torch threads {torch.get_num_threads()}")
    vz = value_zeroing_ratio(lm, args.tokens, args.repeats)
    print(f"value zeroing, {vz['tokens']} tokens x {vz['layers']} layers: {vz['value_zeroing_s']:.1f} s; one forward "
          f"{vz['forward_s'] * 1000:.0f} ms, (layers x tokens) forwards / 4 = {vz['reference_s']:.1f} s; "
          f"ratio {vz['ratio']:.3f} (target <= 1)")
    if args.no_alti:
        return
    child = subprocess.run([sys.executable, __file__, "--alti-child", str(args.alti_tokens), "--alti-layers",
                            str(args.alti_layers)], capture_output=True, text=True, check=True)
    alti = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"ALTI-Logit, {alti['tokens']} tokens, {alti['layers']} layers: peak RSS {alti['peak_rss_mib']:.0f} MiB, "
          f"{alti['alti_above_mib']:.0f} MiB above the loaded model ({alti['loaded_mib']:.0f} MiB); for scale: one "
          f"layer's eager attention weights {alti['attention_weights_mib']:.0f} MiB, the logits of a plain forward "
          f"{alti['logits_mib']:.0f} MiB; {alti['alti_s']:.1f} s")


if __name__ == "__main__":
    main()
