"""How close half precision is to float32 on the real SmolLM2: the same weights cast, the same text.

Lens: share of (layer, position) rank cells that are equal (all cells, and the cells ranked 1..10 in float32),
within a factor 2, and where rank 1 agrees.
Attribution (grad x input, the last 10 tokens): Pearson correlation of each explained token's row with the
float32 row (median and minimum), and the largest relative difference of a row's total. Time of both, per dtype.
Run it by hand: ``python benchmarks/bench_dtypes.py [--tokens 200]``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import ecco_widgets as ew
    from pydoc_data.topics import topics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    full = ew.demo_model()
    ids = full.encode(" ".join(topics.values()))[: args.tokens]
    targets = list(range(len(ids) - 10, len(ids)))
    options = dict(attribution=("grad_x_input",), targets=targets, progress=False, keep_hidden_states=False)
    start = time.perf_counter()
    reference = full.analyze_ids(ids, **options)
    print(f"## SmolLM2-135M, {len(ids)} tokens of pydoc text, grad x input of the last 10; float32 took "
          f"{time.perf_counter() - start:.1f} s")
    print(f"{'dtype':9} {'equal cells':>12} {'equal, top-10':>14} {'within 2x':>10} {'rank-1 agree':>13} "
          f"{'row corr median':>16} "
          f"{'row corr min':>13} {'seconds':>8}")
    ref_rows = reference.attributions("grad_x_input")
    for dtype in (torch.bfloat16, torch.float16):
        half = ew.from_pretrained(copy.deepcopy(full.model).to(dtype), tokenizer=full.tokenizer)
        start = time.perf_counter()
        try:
            out = half.analyze_ids(ids, **options)
        except ew.NonFiniteError as error:
            print(f"{str(dtype).split('.')[-1]:9} {error}")
            continue
        seconds = time.perf_counter() - start
        a, b = reference.ranks, out.ranks
        equal = (a == b).mean()
        close = (np.abs(np.log2(a) - np.log2(b)) <= 1).mean()
        top1 = ((a == 1) == (b == 1)).mean()
        top10 = (a[a <= 10] == b[a <= 10]).mean()
        rows = out.attributions("grad_x_input")
        corr = [np.corrcoef(ref_rows[i, :p], rows[i, :p])[0, 1] for i, p in enumerate(targets)]
        print(f"{str(dtype).split('.')[-1]:9} {equal:12.1%} {top10:14.1%} {close:10.1%} {top1:13.1%} "
              f"{np.median(corr):16.4f} "
              f"{np.min(corr):13.4f} {seconds:8.1f}", flush=True)


if __name__ == "__main__":
    main()
