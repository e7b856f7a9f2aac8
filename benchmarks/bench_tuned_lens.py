"""Tuned lens on the bundled SmolLM2: training time with the default settings on this machine, and the held-out
KL to the final layer per layer, logit lens vs tuned lens (the table and plot in docs/lenses.md come from this script).

Training text: the English help topics of Python's ``pydoc_data`` (every tenth topic held out for evaluation).
Target (issue 15): training under 10 minutes on a 2-core CPU, and a lower held-out KL than the logit lens at every
middle layer.

Run: python benchmarks/bench_tuned_lens.py [--steps N] [--plot docs/img/tuned_lens_kl.png] [--save DIR]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import ecco_widgets as ew
from ecco_widgets.analysis.tuned_lens_fit import FIT_DEFAULTS


def pydoc_texts(held_out: bool) -> list[str]:
    from pydoc_data.topics import topics

    keys = sorted(topics)
    chosen = keys[::10] if held_out else [k for i, k in enumerate(keys) if i % 10]
    return [topics[k] for k in chosen]


def plot(logit: np.ndarray, tuned: np.ndarray, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=120)
    layers = np.arange(len(logit))
    ax.plot(layers, logit, marker="o", ms=3, label="logit lens")
    ax.plot(layers, tuned, marker="o", ms=3, label="tuned lens")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("block output")
    ax.set_ylabel("KL(final || layer), nats")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=FIT_DEFAULTS["steps"])
    parser.add_argument("--held-out-tokens", type=int, default=4096)
    parser.add_argument("--plot", default="")
    parser.add_argument("--save", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    lm = ew.demo_model()
    start = time.perf_counter()
    lens = ew.TunedLens.fit(lm, pydoc_texts(False), steps=args.steps, progress=True)
    seconds = time.perf_counter() - start
    held = pydoc_texts(True)
    logit = ew.held_out_kl(lm, held, max_tokens=args.held_out_tokens)
    tuned = ew.held_out_kl(lm, held, lens=lens, max_tokens=args.held_out_tokens)
    n = lm.spec.n_layers
    middle = range(n // 4, 3 * n // 4)
    print(f"training: {seconds:.0f} s for {args.steps} steps of {FIT_DEFAULTS['batch_tokens']} tokens, "
          f"{FIT_DEFAULTS['max_tokens']} training tokens read (target < 600 s)")
    print(f"held-out KL (nats, {args.held_out_tokens} tokens), per block output:")
    print("layer  logit   tuned")
    for layer in range(n):
        print(f"{layer:5d}  {logit[layer]:6.3f}  {tuned[layer]:6.3f}")
    lower = all(tuned[i] < logit[i] for i in middle)
    print(f"middle layers {middle.start}..{middle.stop - 1}: tuned lower at every one: {lower}; mean "
          f"{np.mean(logit[list(middle)]):.2f} -> {np.mean(tuned[list(middle)]):.2f} nats")
    if args.plot:
        plot(logit, tuned, args.plot, f"SmolLM2-135M, held-out pydoc text: tuned lens trained {seconds:.0f} s on "
                                      "2 CPU cores")
    if args.save:
        lens.save(args.save)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds": seconds, "logit": logit.tolist(), "tuned": tuned.tolist(),
                       "loss": lens.history["loss"]}, f)


if __name__ == "__main__":
    main()
