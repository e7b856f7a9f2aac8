"""Context mixing on SmolLM2-135M (the bundled demo model, float32): the cost of value zeroing and the memory of
ALTI-Logit (issue 28).

- value zeroing over every layer, 200 source tokens (the last of 201 tokens of pydoc_data.topics['for'] explained):
  the method alone (``compute_attributions(..., ["value_zeroing"])``) against the time of (layers x tokens) full
  forwards / 4, the forward timed over the same 200 tokens in the same run (the fastest of the forwards timed just
  before and just after, so that a busy machine inflates the method's time, not the reference). Target: ratio <= 1.
- ALTI-Logit at 2,000 tokens (``--alti-tokens``), the last one explained: the peak resident memory of the call (RSS
  peak from ``resource.getrusage``) above the process's resident memory with the model loaded and every weight
  paged in (the weights are memory-mapped from the safetensors file: a forward pages in 13.5 MiB per block of
  SmolLM2 the first time, which an earlier version of this benchmark counted as ALTI's), in a fresh subprocess so
  earlier work does not hide it. It includes the call's two forwards (one with eager attention: one layer's
  attention weights at a time). For scale, the same for one plain forward over the same tokens (sdpa, logits kept),
  in another fresh subprocess. ``--alti-layers N`` keeps SmolLM2's first N blocks.

Run: python benchmarks/bench_mixing.py [--tokens 200 (0: no value zeroing)] [--alti-tokens 2000] [--repeats 3]
[--alti-layers N]
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


def alti_memory(n: int, layers: int = 0, plain: bool = False) -> dict:
    """Run in a fresh process: peak RSS of ALTI-Logit (``plain``: of one plain forward) above the resident model, in
    MiB. layers > 0 keeps only SmolLM2's first ``layers`` blocks."""
    lm = ew.demo_model()
    if layers:
        lm.model.model.layers = lm.model.model.layers[:layers]
        lm.model.config.num_hidden_layers = layers
        lm = ew.from_pretrained(lm.model, tokenizer=lm.tokenizer)
    ids = torch.tensor([text_ids(lm, n + 1)])
    with torch.no_grad():  # page in every weight (memory-mapped from the file) before the baseline is read
        for parameter in lm.model.parameters():
            float(parameter.sum())
    loaded = resident_mib()
    start = time.perf_counter()
    if plain:
        with torch.inference_mode():
            lm.model(ids, use_cache=False)
    else:
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
    parser.add_argument("--plain-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.alti_child:
        print(json.dumps(alti_memory(args.alti_child, args.alti_layers, args.plain_child)))
        return
    lm = ew.demo_model()
    print(f"SmolLM2-135M float32, torch threads {torch.get_num_threads()}")
    if args.tokens:
        vz = value_zeroing_ratio(lm, args.tokens, args.repeats)
        print(f"value zeroing, {vz['tokens']} tokens x {vz['layers']} layers: {vz['value_zeroing_s']:.1f} s; one "
              f"forward {vz['forward_s'] * 1000:.0f} ms, (layers x tokens) forwards / 4 = {vz['reference_s']:.1f} s; "
              f"ratio {vz['ratio']:.3f} (target <= 1)")
    if args.no_alti:
        return
    runs = {}
    for name, extra in (("ALTI-Logit", []), ("one plain forward", ["--plain-child"])):
        child = subprocess.run([sys.executable, __file__, "--alti-child", str(args.alti_tokens), "--alti-layers",
                                str(args.alti_layers), *extra], capture_output=True, text=True, check=True)
        runs[name] = json.loads(child.stdout.strip().splitlines()[-1])
    for name, run in runs.items():
        print(f"{name}, {run['tokens']} tokens, {run['layers']} layers: peak RSS {run['peak_rss_mib']:.0f} MiB, "
              f"{run['alti_above_mib']:.0f} MiB above the resident model ({run['loaded_mib']:.0f} MiB); "
              f"{run['alti_s']:.1f} s")
    alti = runs["ALTI-Logit"]
    print(f"for scale: one layer's eager attention weights {alti['attention_weights_mib']:.0f} MiB, the logits of a "
          f"plain forward {alti['logits_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
