"""SAE features on SmolLM2-135M (the bundled demo model, float32) over 500 tokens of the Python docs
(pydoc_data.topics): what a dictionary of 36,864 latents (topk, k=64) at a mid-layer MLP output
(``blocks.15.hook_mlp_out``) costs.

- analyze with the SAE / without: ``lm.analyze_ids(ids, saes=[(sae, site)])`` against ``lm.analyze_ids(ids)``
  (target <= 1.3x). Two dictionaries: a random one (its attach check fails, so the check also encodes the
  neighbouring sites to name a better one: the cost a misplaced dictionary adds) and one whose first 1,152 latents
  are +- the principal directions of the site's activations on the text (the rest random): it fits its site, the
  check passes, as a trained dictionary's would;
- feature attribution of 20 targets / gradient x input of the same 20 targets (target <= 2x): the last 20 tokens,
  ``out.feature_attribution((sae, site), positions)`` against the engine's ``grad_x_input`` (logit targets both);
- the stored features' bytes (``out.features[name]``: indices int32 + values float32 + error norms) against
  tokens x k x 8 bytes.

Timed in turn within each repeat (interleaved); ratios as the median of the per-repeat ratios and as fastest over
fastest: the 2-core machine is shared, so absolute times move between runs; the ratios are what to read.

Run: python benchmarks/bench_features.py [--repeats 5] [--tokens 500] [--device cpu] [--warmup 1]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from pydoc_data.topics import topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ecco_widgets as ew  # noqa: E402
from ecco_widgets.analysis.features.record import FeatureRecorder  # noqa: E402
from ecco_widgets.capture import capture  # noqa: E402
from ecco_widgets.models.causal_lm import compute_attributions  # noqa: E402

D_SAE, K, SITE, N_TARGETS = 36_864, 64, "blocks.15.hook_mlp_out", 20


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def random_sae(d: int, device: str, basis: torch.Tensor | None = None, mean: torch.Tensor | None = None) -> ew.SAE:
    """Unit-norm random decoder rows, encoder = decoder^T; with ``basis``, the first 2 * d rows are +- its rows and
    the random rows' encoder is scaled by 0.05, so that the top k are the basis' largest coefficients."""
    g = torch.Generator().manual_seed(0)
    W_dec = torch.randn(D_SAE, d, generator=g)
    W_dec = W_dec / W_dec.norm(dim=-1, keepdim=True)
    W_enc = W_dec.T.clone()
    if basis is not None:
        W_dec[: 2 * d] = torch.cat([basis, -basis])
        W_enc = W_dec.T.clone()
        W_enc[:, 2 * d:] *= 0.05
    b_dec = torch.zeros(d) if mean is None else mean
    return ew.SAE(W_enc=W_enc.contiguous(), W_dec=W_dec, b_enc=torch.zeros(D_SAE), b_dec=b_dec,
                  architecture="topk", k=K).to(device=device)


def site_values(lm, ids: list[int]) -> torch.Tensor:
    """The site's activations on the text (n, d), read by the feature recorder with an identity dictionary."""
    d = int(lm.spec.embedding.weight.shape[-1])
    eye = ew.SAE(W_enc=torch.eye(d), W_dec=torch.eye(d), b_enc=torch.zeros(d), b_dec=torch.zeros(d)).to(lm.device)
    recorder = FeatureRecorder(lm.spec, [(eye, SITE)], len(ids), check=False)
    capture(lm.spec, torch.tensor([ids], device=lm.device), plugs=(recorder,))
    return recorder.read(recorder.items[0]["read"]).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (medians reported)")
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each way first (0: the dictionaries' "
                        "fit is then read from the first timed run)")
    args = parser.parse_args()
    lm = ew.demo_model(device=args.device) if args.device != "cpu" else ew.demo_model()
    text = "\n".join(topics[k] for k in ("for", "while", "if", "try", "with", "function", "class"))
    ids = lm.encode(text)[: args.tokens]
    assert len(ids) == args.tokens, len(ids)
    n = len(ids)
    positions = list(range(n - N_TARGETS, n))
    x = site_values(lm, ids)
    basis = torch.linalg.svd(x[1:] - x[1:].mean(0), full_matrices=True).Vh  # principal directions, completed (d, d)
    saes = {"random": random_sae(x.shape[-1], args.device),
            "fitted": random_sae(x.shape[-1], args.device, basis.cpu(), x[1:].mean(0).cpu())}
    print(f"SmolLM2-135M float32 on {args.device}, {n} tokens of pydoc_data.topics, SAE {D_SAE} latents topk k={K} "
          f"at {SITE}, torch threads {torch.get_num_threads()}, {args.repeats} interleaved repeats")
    input_ids = torch.tensor([ids], device=lm.device)
    plain = lm.analyze_ids(ids, progress=False)

    ways = {
        "analyze alone": lambda: lm.analyze_ids(ids, progress=False),
        "analyze + random SAE": lambda: lm.analyze_ids(ids, saes=[(saes["random"], SITE)], progress=False),
        "analyze + fitted SAE": lambda: lm.analyze_ids(ids, saes=[(saes["fitted"], SITE)], progress=False),
        "grad x input, 20 targets": lambda: compute_attributions(lm.spec, input_ids, np.array(positions),
                                                                 ["grad_x_input"], target="logit", progress=False),
        "feature attribution, 20 targets": lambda: plain.feature_attribution((saes["fitted"], SITE),
                                                                            positions=positions),
    }
    times_first: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, fn in ways.items():  # warm-up
            if not args.warmup and not name.startswith("analyze +"):
                continue
            elapsed, found = timed(fn)
            if not args.warmup:
                times_first[name] = elapsed
            if name.startswith("analyze +"):
                f = next(iter(found.features.values()))
                print(f"  {name[10:]}: FVU {f.fvu:.3f}, L0 {f.l0:.1f}, attach check "
                      f"{'warned' if any('FVU' in str(w.message) for w in caught) else 'passed'}", flush=True)
                caught.clear()
        times: dict[str, list[float]] = {k: [] for k in ways}
        for repeat in range(args.repeats):
            for name, fn in ways.items():
                if repeat == 0 and name in times_first:
                    times[name].append(times_first[name])
                else:
                    times[name].append(timed(fn)[0])
                print(f"  ({name}: {times[name][-1]:.2f} s)", flush=True)
    for name, ts in times.items():
        print(f"{name:34s} median {np.median(ts):6.2f} s  (each: {', '.join(f'{t:.2f}' for t in ts)})")
    pairs = [("analyze + fitted SAE", "analyze alone", 1.3), ("analyze + random SAE", "analyze alone", 1.3),
             ("feature attribution, 20 targets", "grad x input, 20 targets", 2.0)]
    for name, base, target in pairs:
        ratios = np.array(times[name]) / np.array(times[base])
        ratio, fastest = float(np.median(ratios)), min(times[name]) / min(times[base])
        print(f"{name} / {base}: median {ratio:.2f}x (each: {', '.join(f'{r:.2f}' for r in ratios)}); fastest / "
              f"fastest {fastest:.2f}x; target <= {target}x: {'met' if ratio <= target else 'not met'} (median)")
    f = next(iter(lm.analyze_ids(ids, saes=[(saes["fitted"], SITE)], progress=False).features.values()))
    stored = f.indices.nbytes + f.values.nbytes + f.error_norm.nbytes
    print(f"stored features: {stored:,} bytes = {stored / (n * K * 8):.3f} x tokens x k x 8 bytes "
          f"(indices {f.indices.shape} int32 + values float32 + error norms); dense float32 would be "
          f"{n * D_SAE * 4:,} bytes")


if __name__ == "__main__":
    main()
