"""Direct logit attribution on SmolLM2-135M (the bundled demo model, float32) over a 200-token text from the Python
docs (pydoc_data.topics): what DLA adds to the one hooked forward of `lm.analyze_ids`.

- analyze alone: `lm.analyze_ids(ids)`;
- DLA by head, one position: `lm.analyze_ids(ids, components=True)` (the same forward, recording the components)
  then `out.logit_attribution(-1, unit="head")` (the model's top prediction after the last token);
- all positions by layer: the same forward, then `out.logit_attributions(unit="layer")` (every position in one
  batched pass: each weight read once for all positions);
- all positions by layer, one call per position (the way before the batched pass, for comparison): the same forward,
  then `out.logit_attribution(p, unit="layer")` at each of the 200 positions.

Targets (issue 28): one position by head <= 1.2x analyze alone; all positions by layer <= 2x. The three are timed in
turn within each repeat (interleaved); each ratio is given as the median of the per-repeat ratios and as the fastest
time over the fastest analyze (the least disturbed runs): the 2-core machine is shared with other jobs, which slow
single runs by up to 10x, so absolute times move between runs; the ratios are what to read.

Run: python benchmarks/bench_dla.py [--repeats 5] [--tokens 200] [--threads 1] [--skip-per-position]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pydoc_data.topics import topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ecco_widgets as ew  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (medians reported)")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--skip-per-position", action="store_true",
                        help="leave out the one-call-per-position way (the slowest on a loaded machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = ew.demo_model()
    ids = lm.encode(topics["for"])[: args.tokens]
    assert len(ids) == args.tokens, len(ids)
    n = len(ids)
    print(f"SmolLM2-135M float32, {n} tokens of pydoc_data.topics['for'], torch threads {torch.get_num_threads()}, "
          f"{args.repeats} interleaved repeats")

    def analyze():
        return lm.analyze_ids(ids, progress=False)

    def one_position_by_head():
        return lm.analyze_ids(ids, components=True, progress=False).logit_attribution(-1, unit="head")

    def all_positions_by_layer():
        return lm.analyze_ids(ids, components=True, progress=False).logit_attributions(unit="layer")

    def all_positions_one_call_each():
        out = lm.analyze_ids(ids, components=True, progress=False)
        return [out.logit_attribution(p, unit="layer") for p in range(n)]

    ways = {"analyze alone": analyze, "DLA by head, one position": one_position_by_head,
            "DLA by layer, all positions": all_positions_by_layer,
            "DLA by layer, a call per position": all_positions_one_call_each}
    if args.skip_per_position:
        del ways["DLA by layer, a call per position"]
    for fn in ways.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in ways}
    for repeat in range(args.repeats):
        for name, fn in ways.items():
            times[name].append(timed(fn)[0])
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    base = np.array(times["analyze alone"])
    for name, ts in times.items():
        print(f"{name:30s} median {np.median(ts):6.2f} s  (each: {', '.join(f'{t:.2f}' for t in ts)})")
    targets = {"DLA by head, one position": 1.2, "DLA by layer, all positions": 2.0,
               "DLA by layer, a call per position": 2.0}
    for name, target in targets.items():
        if name not in times:
            continue
        ratios = np.array(times[name]) / base
        ratio = float(np.median(ratios))
        fastest = min(times[name]) / float(base.min())
        print(f"{name} / analyze alone: median {ratio:.2f}x (each: {', '.join(f'{r:.2f}' for r in ratios)}); "
              f"fastest / fastest {fastest:.2f}x; target <= {target}x: {'met' if ratio <= target else 'not met'} "
              f"(median), {'met' if fastest <= target else 'not met'} (fastest)")
    out = lm.analyze_ids(ids, components=True, progress=False)
    for unit in ("head", "layer"):
        out.logit_attribution(-1, unit=unit)
        start = time.perf_counter()
        for p in range(20):
            out.logit_attribution(p, unit=unit)
        print(f"one logit_attribution call alone ({unit}, after the forward): "
              f"{(time.perf_counter() - start) / 20 * 1000:.0f} ms (mean of 20)")
    out.logit_attributions(unit="layer")
    start = time.perf_counter()
    for _ in range(5):
        out.logit_attributions(unit="layer")
    print(f"one logit_attributions call alone (layer, all {n} positions, after the forward): "
          f"{(time.perf_counter() - start) / 5 * 1000:.0f} ms (mean of 5)")


if __name__ == "__main__":
    main()
