"""Benchmark: cost of capturing MLP activations, and NMF time, on the bundled SmolLM2-135M (offline).

Run: ``python benchmarks/bench_activations.py [--repeats 5] [--tokens 1000]``. Not a test: it prints timings and
ratios measured within this one run (the machine may be shared, so compare ratios, not absolute times).

1. Capture overhead: ``ecco_widgets.capture.capture(spec, ids, activation_layers=all 30 layers)`` (what
   ``lm.analyze_ids(ids, activations=True)`` runs: the one hooked forward) against a plain ``model(ids)`` under
   ``torch.inference_mode()``; interleaved repeats, medians of wall time and of process CPU time (the CPU time
   is steadier when other processes share the cores), and the fastest wall time. Target: ratio <= 1.3.
2. NMF time for 8 factors on real SmolLM2 activations (clipped at 0):
   (a) 53 tokens x 18,432 neurons (layers 0-11; Ecco measured 0.75 s for this size),
   (b) 1,000 tokens x 46,080 neurons (all 30 layers),
   with several scikit-learn option sets: ecco_widgets' defaults, scikit-learn's defaults, looser tolerances, Ecco's
   (init="random", max_iter=500), and the multiplicative-update solver. "cos" is the smallest cosine similarity
   between a factor (token profile) and its best match among the factors of ecco_widgets' defaults, which are
   converged (a tighter tol=1e-5 gives the same factors, cos 1.0000). NMF has many local optima: a low cos with a
   similar error (Ecco's random init) is another solution, not a worse one.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

import ecco_widgets as ew
from ecco_widgets.analysis.factors import DEFAULT_NMF_OPTIONS
from ecco_widgets.capture import capture
from ecco_widgets.result import Output

PARAGRAPH = (
    "The history of the city begins with a small settlement on the bank of a river, where fishermen and traders met "
    "to exchange salt, grain and wool. Over the centuries the market grew into a town with stone walls, a cathedral "
    "and a university, and the river port became one of the busiest in the region. Merchants kept careful records of "
    "every ship that arrived, the goods it carried and the prices they fetched, and those ledgers now let historians "
    "follow the rise and fall of whole industries. "
)


def long_ids(lm, n_tokens: int) -> list[int]:
    text, i = "", 0
    while len(lm.encode(text or "x")) < n_tokens:
        i += 1
        text += f"Chapter {i}. " + PARAGRAPH
    return lm.encode(text)[:n_tokens]


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_capture(lm, ids: list[int], repeats: int) -> dict:
    spec, model = lm.spec, lm.model
    input_ids = torch.tensor([ids])
    layers = list(range(spec.n_layers))

    def plain():
        with torch.inference_mode():
            model(input_ids=input_ids, use_cache=False)

    def hooked():
        capture(spec, input_ids, activation_layers=layers)

    plain(), hooked()  # warm up
    t_plain, t_hooked = [], []
    for _ in range(repeats):  # interleaved, so load from other processes hits both alike
        t_plain.append(timed(plain))
        t_hooked.append(timed(hooked))
    result = {}
    for name, pick in (("wall median", lambda t: statistics.median(x[0] for x in t)),
                       ("wall min", lambda t: min(x[0] for x in t)),
                       ("cpu median", lambda t: statistics.median(x[1] for x in t))):
        result[name] = (pick(t_plain), pick(t_hooked))
    return result


def bench_nmf(x: np.ndarray, options: dict, n_components: int = 8) -> dict:
    """x: already clipped float32 (n_tokens, n_neurons)."""
    from sklearn.decomposition import NMF

    model = NMF(n_components=n_components, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wall, cpu = time.perf_counter(), time.process_time()
        w = model.fit_transform(x)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    converged = not any("converge" in str(c.message).lower() for c in caught)
    rel = float(np.linalg.norm(x - w @ model.components_) / np.linalg.norm(x))
    return {"seconds": wall, "cpu": cpu, "n_iter": int(model.n_iter_), "rel_error": rel, "converged": converged,
            "profiles": w.T}


def min_cosine(profiles: np.ndarray, reference: np.ndarray) -> float:
    """Smallest, over the factors, cosine similarity of a factor's token profile to its best match in reference."""
    a = profiles / (np.linalg.norm(profiles, axis=1, keepdims=True) + 1e-12)
    b = reference / (np.linalg.norm(reference, axis=1, keepdims=True) + 1e-12)
    return float((a @ b.T).max(axis=1).min())


REFERENCE = "ecco_widgets default (cd, nndsvda, tol 1e-4, 500 it)"
OPTION_SETS = {
    REFERENCE: dict(DEFAULT_NMF_OPTIONS),
    "sklearn default (same, max_iter 200)": dict(random_state=0),
    "cd, nndsvda, tol 1e-3": dict(DEFAULT_NMF_OPTIONS, tol=1e-3),
    "cd, nndsvda, tol 1e-2": dict(DEFAULT_NMF_OPTIONS, tol=1e-2),
    "Ecco (cd, random init, 500 it)": dict(init="random", random_state=0, max_iter=500),
    "mu, nndsvda, 500 it": dict(DEFAULT_NMF_OPTIONS, solver="mu"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="NMF with ecco_widgets' and scikit-learn's defaults only")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    t0 = time.perf_counter()
    lm = ew.demo_model()
    print(f"demo model loaded in {time.perf_counter() - t0:.1f} s: {lm}")
    n_neurons = lm.spec.down_proj(0).in_features

    print(f"\n1. Capture overhead (all {lm.spec.n_layers} layers' activations) vs plain forward, "
          f"{args.repeats} interleaved repeats; ratio = capture / plain (target <= 1.3x)")
    for n in (53, args.tokens):
        r = bench_capture(lm, long_ids(lm, n), args.repeats)
        cells = "  ".join(f"{name}: {p * 1e3:7.0f} -> {h * 1e3:7.0f} ms = {h / p:.2f}x" for name, (p, h) in r.items())
        print(f"   {n:5d} tokens  {cells}")

    print("\n2. NMF, 8 factors, real SmolLM2 activations (SwiGLU, clipped at 0)")
    ids = long_ids(lm, args.tokens)
    captured = capture(lm.spec, torch.tensor([ids]), activation_layers=list(range(lm.spec.n_layers)))
    acts = np.stack([captured.activations[layer] for layer in range(lm.spec.n_layers)])
    print(f"   activations {acts.shape} = {acts.nbytes / 2**20:.0f} MiB, {(acts < 0).mean():.0%} negative")
    cases = {
        f"(a) 53 tokens x {12 * n_neurons} neurons (layers 0-11; Ecco: 0.75 s)":
            np.concatenate(list(acts[:12, :53]), 1),
        f"(b) {acts.shape[1]} tokens x {acts.shape[0] * n_neurons} neurons (all layers)": np.concatenate(list(acts), 1),
    }
    option_sets = {k: v for k, v in OPTION_SETS.items() if not args.quick or "default" in k}
    bench_nmf(np.random.default_rng(0).random((60, 200), dtype=np.float32), dict(DEFAULT_NMF_OPTIONS))  # warm-up
    for label, x in cases.items():
        x = np.maximum(x, 0).astype(np.float32)
        print(f"   {label}:")
        reference = None
        for name, options in option_sets.items():
            r = bench_nmf(x, options)
            reference = r["profiles"] if reference is None else reference
            print(f"      {name:46s} {r['seconds']:7.2f} s wall {r['cpu']:7.2f} s cpu {r['n_iter']:4d} iterations"
                  f"  rel. error {r['rel_error']:.5f}  cos {min_cosine(r['profiles'], reference):.4f}"
                  f"{'' if r['converged'] else '  (hit max_iter)'}")

    out = Output(token_ids=np.asarray(ids), tokens=[str(i) for i in ids], raw_tokens=[str(i) for i in ids],
                 n_input_tokens=len(ids), ranks=np.ones((lm.spec.n_layers, len(ids) - 1), np.int32),
                 activations=acts, activation_layers=list(range(lm.spec.n_layers)))
    t0 = time.perf_counter()
    nmf = out.run_nmf(n_components=8)
    print(f"   out.run_nmf(8) end to end on (b): {time.perf_counter() - t0:.2f} s, {nmf}")

if __name__ == "__main__":
    main()
