"""The explorer's components panel on SmolLM2-135M (the bundled demo model, float32), 200 tokens of the Python docs
(pydoc_data.topics['for']): what building it adds to `lm.analyze_ids(ids, components=True)`, and its payload.

- analyze: `lm.analyze_ids(ids, components=True)` (the one hooked forward, recording the components);
- explore: `out.explore()` of that output, without the panel (`components=False`) and with it (the default: every
  token by layer through `out.logit_attributions`, the explained token by head);
- payload: the bytes of the panel's arrays as they are sent (binary buffers), and of the offline page with and
  without them.

No target is set by the issue for this panel; the ratio explore-with-components / analyze is what to read (timed in
turn within each repeat, the median of the per-repeat ratios: the 2-core machine is shared and slows single runs).

Run: python benchmarks/bench_explorer_components.py [--repeats 3] [--tokens 200]
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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    lm = ew.demo_model()
    ids = lm.encode(topics["for"])[: args.tokens]
    n = len(ids)
    print(f"SmolLM2-135M float32, {n} tokens, torch threads {torch.get_num_threads()}, {args.repeats} repeats")
    out = lm.analyze_ids(ids, components=True, progress=False)
    out.explore(progress=False)  # warm-up
    rows: dict[str, list[float]] = {"analyze (components=True)": [], "explore without the panel": [],
                                    "explore with the panel": []}
    for _ in range(args.repeats):
        t, out = timed(lambda: lm.analyze_ids(ids, components=True, progress=False))
        rows["analyze (components=True)"].append(t)
        rows["explore without the panel"].append(timed(lambda: out.explore(components=False, progress=False))[0])
        rows["explore with the panel"].append(timed(lambda: out.explore(progress=False))[0])
    for name, ts in rows.items():
        print(f"{name:28s} median {np.median(ts):6.2f} s  (each: {', '.join(f'{t:.2f}' for t in ts)})")
    ratios = np.array(rows["explore with the panel"]) / np.array(rows["analyze (components=True)"])
    print(f"explore with the panel / analyze: median {np.median(ratios):.3f}x")
    view = out.explore(progress=False)
    arrays = {k: getattr(view, k).nbytes for k in view.trait_names()
              if k.startswith("component_") and isinstance(getattr(view, k), np.ndarray)}
    print(f"panel arrays: {sum(arrays.values())} bytes ({', '.join(f'{k} {v}' for k, v in arrays.items())})")
    every = out.explore(progress=False, head_tokens=list(range(1, n)))
    print(f"with every token by head: {sum(getattr(every, k).nbytes for k in arrays)} bytes")
    print(f"offline page: {len(view.to_html())} bytes with the panel, "
          f"{len(out.explore(components=False, progress=False).to_html())} without")


if __name__ == "__main__":
    main()
