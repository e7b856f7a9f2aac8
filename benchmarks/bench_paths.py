"""Integration paths and rules, by completeness error per gradient evaluation, on the same rows (issue 13).

--quadratures: integrated gradients' rule in alpha. The integrand g_t(alpha) = grad f_t(path(alpha)) . (x - start)
is evaluated once per node (one engine pass per node), then every rule is summed from those values: Gauss-Legendre
with n points on [0, 1], and composite rules with geometric panels [0, 1e-p, ..., 0.1, 1] and k Gauss-Legendre
points each (more nodes near the baseline, where the issue located the structure). Work: the row of bench_vs_ecco.py's
IG comparison on SmolLM2 (its 34-token prompt + 5 greedy tokens), zero baseline, nothing kept (Ecco's) and the first
token kept (ours). Question: does any rule with fewer points match Gauss-Legendre's 50?

--dig: discretized IG (path through neighbouring words' embeddings, ``attribution=("dig",)``) against IG on the
same rows: the demo text ("The keys to the cabinet" + 10 greedy tokens) on SmolLM2 and the GPT-2-like model of
bench_attribution.py, first token kept, zero and EOS baselines; DIG with 1, 2 and 4 Gauss-Legendre nodes per
segment and both anchor strategies. Columns: relative completeness error median / max, seconds, and the median
Pearson correlation of each row with IG at 128 steps (the two explain along different paths, so they may differ).

Run: python benchmarks/bench_paths.py --quadratures | --dig [--models smollm2,distilgpt2-random]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_attribution import DEMO_PROMPT, MODELS, load_model  # noqa: E402

import ecco_widgets as ew  # noqa: E402
from ecco_widgets.analysis.attribution import discretized  # noqa: E402


def gl(k: int, a: float = 0.0, b: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(k)
    return a + (b - a) * (1 + x) / 2, (b - a) * w / 2


def quadrature_rules() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rules = {f"Gauss-Legendre {k}": gl(k) for k in (8, 10, 12, 16, 20, 24, 32, 50)}
    for p in (3, 4, 5, 6):
        edges = [0.0] + [10.0 ** -e for e in range(p, 0, -1)] + [1.0]
        for k in (2, 3, 4):
            xs, ws = zip(*[gl(k, a, b) for a, b in zip(edges[:-1], edges[1:])])
            rules[f"panels 0,1e-{p}..1 x {k}"] = (np.concatenate(xs), np.concatenate(ws))
    return rules


def quadrature_table() -> None:
    from _vs_ecco_worker import PROMPT
    from ecco_widgets.analysis.attribution.engine import AttributionJob, frozen_model
    from ecco_widgets.models.baselines import keep_mask
    from ecco_widgets.models.causal_lm import CausalFunction

    lm = load_model("smollm2")
    n_new = 5
    out = lm.generate(PROMPT, max_new_tokens=n_new, generation_kwargs={"min_new_tokens": n_new}, progress=False)
    ids = torch.tensor([out.token_ids.tolist()])
    positions = np.arange(ids.shape[1] - n_new, ids.shape[1])
    rules = quadrature_rules()
    nodes = sorted({float(a) for x, _ in rules.values() for a in x})
    print(f"\n## IG rules on SmolLM2, {len(positions)} rows (bench_vs_ecco's prompt + {n_new} tokens): relative "
          f"completeness error median / max; {len(nodes)} distinct nodes evaluated once each")
    print(f"{'keep':6} {'rule':28} {'points':>6} {'median':>9} {'max':>9}")
    for keep in ("none", "first"):
        function = CausalFunction(lm.spec, ids, positions, "prob", None, None, keep_mask(keep, ids[0].tolist(), set()))
        item = function.inputs[0]
        with frozen_model(lm.model):
            job = AttributionJob(function)
            ends = job.values([torch.cat([item.embeddings, item.start])])
            change = (ends[0] - ends[1]).numpy().astype(np.float64)
            delta = item.delta[0].float()
            g = {a: (job.path_gradients([a], [1.0])[0] * delta).sum(dim=(1, 2)).numpy() for a in nodes}
        for name, (x, w) in rules.items():
            total = sum(wi * g[float(xi)] for xi, wi in zip(x, w))
            rel = 100 * np.abs(total - change) / np.abs(change)
            print(f"{keep:6} {name:28} {len(x):6d} {np.median(rel):8.2f}% {rel.max():8.2f}%", flush=True)


def dig_table(models) -> None:
    smol = load_model("smollm2")
    out = smol.generate(DEMO_PROMPT, max_new_tokens=10, progress=False)
    ids, n_input = [int(i) for i in out.token_ids], out.n_input_tokens
    print(f"\n## DIG vs IG, {DEMO_PROMPT!r} + 10 tokens, first token kept: relative completeness error median / max, "
          "seconds, median correlation of rows with IG-128")
    print(f"{'model':18} {'baseline':8} {'method':30} {'evals':>5} {'median':>9} {'max':>9} {'seconds':>7} "
          f"{'corr':>6}")
    saved = dict(discretized.DIG_DEFAULTS)
    for name in models:
        lm = smol if name == "smollm2" else load_model(name)
        for baseline in ("zero", "eos"):
            baseline_arg = baseline
            if baseline == "eos" and lm.tokenizer is None:  # the random model reads SmolLM2's ids: its row of id 2
                baseline_arg = lm.spec.embedding.weight[smol.tokenizer.eos_token_id].detach().clone()
            settings = [("ig", None, n) for n in (16, 32, 64, 96, 128)]
            settings += [("dig", (strategy, nodes), n) for strategy in ("greedy", "maxcount") for nodes in (1, 2, 4)
                         for n in (16, 32, 64)]
            reference = None
            rows_of = {}
            for method, variant, n_steps in settings:
                if variant:
                    discretized.DIG_DEFAULTS.update(strategy=variant[0], nodes=variant[1])
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ew.CompletenessWarning)
                    res = lm.analyze_ids(ids, n_input_tokens=n_input, attribution=(method,), n_steps=n_steps,
                                         baseline=baseline_arg, keep="first", progress=False)
                seconds = time.perf_counter() - start
                discretized.DIG_DEFAULTS.clear()
                discretized.DIG_DEFAULTS.update(saved)
                rel = 100 * res.convergence_delta(method, relative=True)
                rows_of[(method, variant, n_steps)] = (res.attributions(method, "sum"), rel, seconds)
                if method == "ig" and n_steps == 128:
                    reference = res.attributions(method, "sum")
            for (method, variant, n_steps), (rows, rel, seconds) in rows_of.items():
                corr = np.median([np.corrcoef(rows[i, 1:p], reference[i, 1:p])[0, 1]
                                  for i, p in enumerate(res.targets)])
                label = "IG" if method == "ig" else f"DIG {variant[0]}, {variant[1]} per segment"
                print(f"{name:18} {baseline:8} {label:30} {n_steps:5d} {np.median(rel):8.2f}% {rel.max():8.2f}% "
                      f"{seconds:7.1f} {corr:6.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quadratures", action="store_true")
    parser.add_argument("--dig", action="store_true")
    parser.add_argument("--models", default=",".join(reversed(MODELS)))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.quadratures or args.dig):
        parser.error("choose --quadratures and/or --dig")
    if args.quadratures:
        quadrature_table()
    if args.dig:
        dig_table(args.models.split(","))


if __name__ == "__main__":
    main()
