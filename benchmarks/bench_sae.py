"""Training an SAE on the bundled model on this machine: SmolLM2-135M (float32, CPU), one site, the English text of
Python's `pydoc_data.topics` (topics in sorted order; every tenth held out), `ew.SAE.fit` then `SAE.evaluate` on
the held-out topics.

Reported: the harvest and training times (from the training curve's clock), the held-out FVU, L0, dead and dense
latents, CE loss (clean, with the SAE spliced in, zero-ablated) and CE loss recovered, and the training curve (batch
FVU, L0 and dead fraction against rows seen). Aims (issue 27): <= 10 min of training, CE loss recovered >= 80 %,
dead <= 10 %, FVU <= 0.35.

Run: python benchmarks/bench_sae.py [--site blocks.15.hook_resid_post] [--width 4608] [--k 32] [--epochs 3]
     [--kind topk] [--out benchmarks/results/sae]  (a finished --out is evaluated again, not retrained)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from pydoc_data.topics import topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ecco_widgets as ew  # noqa: E402


def split_topics() -> tuple[list[str], list[str]]:
    """(training texts, held-out texts): every tenth topic of the sorted keys is held out."""
    keys = sorted(topics)
    return ([topics[k] for i, k in enumerate(keys) if i % 10], [topics[k] for i, k in enumerate(keys) if i % 10 == 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", default="blocks.15.hook_resid_post")
    parser.add_argument("--kind", default="topk", choices=["topk", "batchtopk", "jumprelu"])
    parser.add_argument("--width", type=int, default=4608)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--l0-coefficient", type=float, default=None)
    parser.add_argument("--out", default="benchmarks/results/sae")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    lm = ew.demo_model()
    train, held = split_topics()
    extra = {} if args.l0_coefficient is None else {"l0_coefficient": args.l0_coefficient}
    out = Path(args.out) / f"{args.site}-{args.kind}-{args.width}-k{args.k}-e{args.epochs:g}"
    start = time.perf_counter()
    sae = ew.SAE.fit(lm, train, args.site, kind=args.kind, width=args.width, k=args.k, epochs=args.epochs,
                     out=out, batch_size=args.batch_size, lr=args.lr, **extra)
    fit_seconds = time.perf_counter() - start
    training = sae.config["metadata"]["training"]
    train_seconds = training["curve"]["seconds"][-1]
    start = time.perf_counter()
    metrics = sae.evaluate(lm, held)
    eval_seconds = time.perf_counter() - start
    load = os.getloadavg()
    print(f"SmolLM2-135M, {args.site}, {args.kind}, width {args.width}, k {args.k}, {args.epochs:g} epochs of "
          f"{training['identity']['tokens']} rows ({training['steps']} steps of {args.batch_size}); load "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end")
    print(f"fit call {fit_seconds:.0f} s (~0 when --out was already trained): harvest and saving "
          f"{fit_seconds - train_seconds:.0f} s, training {train_seconds:.0f} s; held-out evaluation "
          f"{eval_seconds:.0f} s over {metrics['n_tokens']} tokens")
    print("| FVU | L0 | dead | dense | CE clean | CE with SAE | CE zero-ablated | CE loss recovered |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {metrics['fvu']:.3f} | {metrics['l0']:.1f} | {100 * metrics['dead']:.1f} % | "
          f"{100 * metrics['dense']:.1f} % | {metrics['ce_clean']:.3f} | {metrics['ce_sae']:.3f} | "
          f"{metrics['ce_zero']:.3f} | {100 * metrics['ce_recovered']:.1f} % |")
    curve = training["curve"]
    print("\ntraining curve (batch FVU, L0, dead fraction; every 25 steps):")
    print("| rows seen | seconds | batch FVU | L0 | dead |")
    print("| --- | --- | --- | --- | --- |")
    for i in range(0, len(curve["steps"]), max(1, len(curve["steps"]) // 12)):
        print(f"| {curve['tokens'][i]} | {curve['seconds'][i]:.0f} | {curve['mse'][i]:.3f} | {curve['l0'][i]:.1f} | "
              f"{100 * curve['dead'][i]:.1f} % |")
    (out / "bench.json").write_text(json.dumps({"metrics": metrics, "fit_seconds": fit_seconds,
                                                "eval_seconds": eval_seconds, "load": load}, indent=1))


if __name__ == "__main__":
    main()
