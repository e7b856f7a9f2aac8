"""Activation patching on SmolLM2 (30 layers) over a 12-token prompt pair, 360 patches: ew.patching (batched: many
patches a forward) vs one forward per patch written here with forward hooks (the way it is done by hand), both in
this run; also ew.patching with batch_size=1 (our code, one patch a forward) and attribution patching. Target:
batched >= 5x faster than one forward per patch. The machine may be shared: the ratio is what to read.

Run: python benchmarks/bench_patching.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import ecco_widgets as ew  # noqa: E402

CLEAN = "The Eiffel Tower is located right in the old city of"
CORRUPTED = "The Colosseum is located right in the old city of"


def one_forward_per_patch(lm, clean_ids, corrupted_ids, answer, foil) -> np.ndarray:
    """Exact resid patching, a full forward of the model per (layer, position), its own logits; effect (L, n)."""
    blocks, n = list(lm.model.model.layers), len(clean_ids)
    kept = {}
    handles = [b.register_forward_hook(lambda m, a, out, i=i: kept.__setitem__(i, out[0].detach().clone()
               if isinstance(out, tuple) else out.detach().clone())) for i, b in enumerate(blocks)]
    with torch.inference_mode():
        lc = lm.model(input_ids=torch.tensor([clean_ids])).logits[0, -1]
        for h in handles:
            h.remove()
        lx = lm.model(input_ids=torch.tensor([corrupted_ids])).logits[0, -1]
        ld_clean, ld_corrupted = float(lc[answer] - lc[foil]), float(lx[answer] - lx[foil])
        effect = np.zeros((len(blocks), n))
        for layer, block in enumerate(blocks):
            for p in range(n):
                def write(m, a, out, layer=layer, p=p):
                    t = (out[0] if isinstance(out, tuple) else out).clone()
                    t[0, p] = kept[layer][0, p]
                    return (t, *out[1:]) if isinstance(out, tuple) else t
                h = block.register_forward_hook(write)
                logits = lm.model(input_ids=torch.tensor([corrupted_ids])).logits[0, -1]
                h.remove()
                effect[layer, p] = (float(logits[answer] - logits[foil]) - ld_corrupted) / (ld_clean - ld_corrupted)
    return effect


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="paired repeats (median reported)")
    args = parser.parse_args()
    lm = ew.demo_model()
    clean_ids, corrupted_ids = lm.encode(CLEAN), lm.encode(CORRUPTED)
    assert len(clean_ids) == len(corrupted_ids) == 12, (len(clean_ids), len(corrupted_ids))
    answer, foil = lm.single_token_id(" Paris"), lm.single_token_id(" Rome")
    print(f"SmolLM2-135M, {lm.spec.n_layers} layers x {len(clean_ids)} positions = "
          f"{lm.spec.n_layers * len(clean_ids)} patches, torch threads {torch.get_num_threads()}")
    ew.patching(lm, CLEAN, CORRUPTED, " Paris", " Rome", progress=False)  # warm-up
    rows = {"batched": [], "loop": [], "ours_batch_1": [], "attribution": []}
    for _ in range(args.repeats):  # paired: each repeat times every way once, in turn
        t, batched = timed(lambda: ew.patching(lm, CLEAN, CORRUPTED, " Paris", " Rome", progress=False))
        rows["batched"].append(t)
        t, loop = timed(lambda: one_forward_per_patch(lm, clean_ids, corrupted_ids, answer, foil))
        rows["loop"].append(t)
        t, _ = timed(lambda: ew.patching(lm, CLEAN, CORRUPTED, " Paris", " Rome", batch_size=1, progress=False))
        rows["ours_batch_1"].append(t)
        t, _ = timed(lambda: ew.patching(lm, CLEAN, CORRUPTED, " Paris", " Rome", method="attribution",
                                         progress=False))
        rows["attribution"].append(t)
        assert np.abs(batched.effect - loop).max() < 1e-3, np.abs(batched.effect - loop).max()
    med = {k: float(np.median(v)) for k, v in rows.items()}
    ratios = [lo / b for lo, b in zip(rows["loop"], rows["batched"])]
    print(f"batched ew.patching:          {med['batched']:.2f} s")
    print(f"one forward per patch (hooks): {med['loop']:.2f} s")
    print(f"ew.patching batch_size=1:      {med['ours_batch_1']:.2f} s")
    print(f"attribution patching:          {med['attribution']:.2f} s")
    print(f"ratio loop / batched: median {np.median(ratios):.1f}x (each repeat: "
          f"{', '.join(f'{r:.1f}' for r in ratios)}; target >= 5x: {'met' if np.median(ratios) >= 5 else 'not met'})")
    print(f"ratio batched / attribution: {med['batched'] / med['attribution']:.1f}x")


if __name__ == "__main__":
    main()
