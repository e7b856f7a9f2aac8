"""Input saliency: ours vs Ecco's algorithm (one captum call per generated token over its prefix), same run.

Setting: a distilgpt2-shaped random model (GPT2Config(n_layer=6, n_embd=768, n_head=12, vocab_size=50257), seeded)
and the bundled SmolLM2-135M (ew.demo_model()); a 34-token prompt and 20 generated tokens; probability target, zero
baseline. Each timed run happens in a fresh subprocess, so its peak resident memory (VmHWM, reset after the model is
loaded and warmed up) is its own. Targets: grad x input >= 5x faster; IG >= 1.5x faster with at most half the peak
memory of the loop. Also: IG completeness error vs n_steps and captum's integration methods, and how our time grows
with the number of generated tokens.

Run: python benchmarks/bench_attribution.py [--quick]    (full: several minutes; the IG loop is the slow part)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPT = ("In the small village by the sea, the old fisherman told the children a story about the storm that had "
          "taken his boat many years ago, and how he had rowed back to the shore alone through the dark water")
N_PROMPT = 34
MODELS = ("distilgpt2-random", "smollm2")


# ----- models and token ids -----
def load_model(name: str):
    import ecco_widgets as ew

    if name == "distilgpt2-random":
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(n_layer=6, n_embd=768, n_head=12, vocab_size=50257)).eval()
        return ew.LanguageModel(model, tokenizer=None, name=name)
    return ew.demo_model()


def token_ids(lm, name: str, n_generated: int) -> list[int]:
    """N_PROMPT prompt tokens + n_generated tokens (random for the random model, greedy for SmolLM2)."""
    if name == "distilgpt2-random":
        generator = torch.Generator().manual_seed(1)
        return torch.randint(0, 50257, (N_PROMPT + n_generated,), generator=generator).tolist()
    prompt = lm.encode(PROMPT)[:N_PROMPT]
    assert len(prompt) == N_PROMPT, len(prompt)
    with torch.inference_mode():
        out = lm.model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, N_PROMPT, dtype=torch.long),
                                max_new_tokens=n_generated, min_new_tokens=n_generated, do_sample=False,
                                pad_token_id=lm.tokenizer.eos_token_id)
    return out[0].tolist()


# ----- the two algorithms -----
def captum_loop(lm, ids: list[int], positions: np.ndarray, method: str, n_steps: int) -> np.ndarray:
    """Ecco's algorithm: per explained token, captum on the embeddings of its prefix, softmax of the last logits."""
    from captum.attr import InputXGradient, IntegratedGradients

    model = lm.model
    input_ids = torch.tensor([ids])
    embeddings = lm.spec.embedding(input_ids).detach()
    out = np.zeros((len(positions), len(ids), embeddings.shape[-1]), dtype=np.float32)
    for i, p in enumerate(positions):
        def forward(x):
            return torch.softmax(model(inputs_embeds=x, use_cache=False).logits[:, -1, :], dim=-1)

        prefix = embeddings[:, :p].clone().requires_grad_(True)
        if method == "ig":
            attr = IntegratedGradients(forward).attribute(prefix, target=int(ids[p]), n_steps=n_steps)
        else:
            attr = InputXGradient(forward).attribute(prefix, target=int(ids[p]))
        out[i, :p] = attr[0].detach().numpy()
    return out


def ours(lm, ids: list[int], positions: np.ndarray, method: str, n_steps: int) -> np.ndarray:
    from ecco_widgets.models.causal_lm import compute_attributions

    result = compute_attributions(lm.spec, torch.tensor([ids]), positions, [method], n_steps=n_steps, progress=False)
    return result.raw[method]


# ----- how much faster any exact method can be -----
def flop_ratio_bound(lm, positions: np.ndarray) -> float:
    """Multiply-adds of the loop / the least any exact method needs, counting the weight matmuls only.

    Per explained token at position p the loop runs the body and the full-vocabulary head forward over p rows and
    back again (input gradients only: one matmul per weight, like the forward): 2 p (B + H). An exact method still
    needs one vector-Jacobian product per explained token, since each row of the result is the gradient of a
    different scalar: at least the body's backward over the p-row prefix plus one head row, p B + H. B: weight
    entries in the blocks; H: the unembedding's (vocab x d).
    """
    body = sum(p.numel() for p in lm.spec.blocks.parameters() if p.dim() == 2)
    head = int(lm.spec.unembedding.weight.numel())
    p = positions.astype(np.float64)
    return float((2 * p * (body + head)).sum() / (p * body + head).sum())


# ----- one measurement in a fresh process -----
def _memory_mb() -> dict[str, float]:
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) / 1024
    return values


def child(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    torch.set_num_threads(job["threads"])
    lm = load_model(job["model"])
    ids, positions = job["ids"], np.asarray(job["positions"])
    fn = ours if job["impl"] == "ours" else captum_loop
    fn(lm, ids[:6], np.array([4, 5]), job["method"], 2)  # warm-up: lazy initialisation, kernels
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    except OSError:
        pass
    base = _memory_mb()["VmRSS"]
    start, cpu = time.perf_counter(), time.process_time()
    raw = fn(lm, ids, positions, job["method"], job["n_steps"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.save(job["out"], raw)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": _memory_mb()["VmHWM"], "base_mb": base}))


def run_child(model: str, impl: str, method: str, ids, positions, n_steps: int, threads: int, tmp: Path):
    out = tmp / f"{model}-{impl}-{method}.npy"
    job_file = tmp / "job.json"
    job_file.write_text(json.dumps({"model": model, "impl": impl, "method": method, "ids": ids,
                                    "positions": [int(p) for p in positions], "n_steps": n_steps,
                                    "threads": threads, "out": str(out)}))
    proc = subprocess.run([sys.executable, __file__, "--child", str(job_file)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    stats["raw"] = np.load(out)
    return stats


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# ----- the tables -----
def speed_table(models, n_generated: int, n_steps: int, threads: int) -> None:
    print(f"\n## Ours vs the per-token captum loop ({N_PROMPT}-token prompt, {n_generated} generated tokens, "
          f"IG n_steps={n_steps}, {threads} threads)")
    print("(FLOP bound: the loop's multiply-adds over the least an exact method needs, one input-gradient backward per "
          "explained token; see flop_ratio_bound)")
    print(f"{'model':18} {'method':13} {'loop s':>8} {'ours s':>8} {'speed-up':>9} {'(CPU s)':>8} {'FLOP bound':>10} "
          f"{'loop peak MB':>13} {'ours peak MB':>13} {'extra loop/ours MB':>19} {'max rel diff':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            lm = load_model(name)
            ids = token_ids(lm, name, n_generated)
            positions = np.arange(N_PROMPT, len(ids))
            bound = flop_ratio_bound(lm, positions)
            del lm
            for method in ("grad_x_input", "ig"):
                loop = run_child(name, "loop", method, ids, positions, n_steps, threads, Path(tmp))
                mine = run_child(name, "ours", method, ids, positions, n_steps, threads, Path(tmp))
                extra_loop = loop["peak_mb"] - loop["base_mb"]
                extra_ours = mine["peak_mb"] - mine["base_mb"]
                print(f"{name:18} {method:13} {loop['seconds']:8.2f} {mine['seconds']:8.2f} "
                      f"{loop['seconds'] / mine['seconds']:8.1f}x {loop['cpu'] / mine['cpu']:7.1f}x {bound:9.1f}x "
                      f"{loop['peak_mb']:13.0f} {mine['peak_mb']:13.0f} "
                      f"{extra_loop:9.0f} / {extra_ours:<7.0f} {max_rel_diff(mine['raw'], loop['raw']):13.2e}",
                      flush=True)


def completeness_table(models, n_generated: int, steps_list, every: int = 2) -> None:
    import ecco_widgets.analysis.attribution.methods as attribution
    from ecco_widgets.models.causal_lm import compute_attributions

    n_targets = len(range(0, n_generated, every))
    print(f"\n## IG completeness error |sum(attr) - (f(x) - f(0))| / |f(x) - f(0)| per target "
          f"(median / max over {n_targets} of the {n_generated} generated tokens)")
    methods = ("riemann_trapezoid", "gausslegendre")
    print(f"{'model':18} {'n_steps':>7} " + " ".join(f"{m:>26}" for m in methods) + f" {'ours s (GL)':>12}")
    default = attribution.IG_METHOD
    for name in models:
        lm = load_model(name)
        ids = token_ids(lm, name, n_generated)
        positions = np.arange(N_PROMPT, len(ids), every)
        for n_steps in steps_list:
            cells, seconds = [], 0.0
            for method in methods:
                attribution.IG_METHOD = method
                try:
                    start = time.perf_counter()
                    res = compute_attributions(lm.spec, torch.tensor([ids]), positions, ["ig"],
                                                           n_steps=n_steps, progress=False)
                    seconds = time.perf_counter() - start
                finally:
                    attribution.IG_METHOD = default
                total = res.raw["ig"].sum(axis=(1, 2), dtype=np.float64)
                change = total - res.deltas["ig"]
                rel = np.abs(res.deltas["ig"]) / np.maximum(np.abs(change), 1e-12)
                cells.append(f"{100 * np.median(rel):11.3f}% / {100 * rel.max():9.3f}%")
            print(f"{name:18} {n_steps:7d} " + " ".join(f"{c:>26}" for c in cells) + f" {seconds:12.2f}", flush=True)


def roughness_table(models, n_generated: int, n_points: int = 401, every: int = 2) -> None:
    """Why IG converges on one model and not the other: f along the straight path from the zero baseline."""
    from ecco_widgets.analysis.attribution import AttributionJob, frozen_model
    from ecco_widgets.models.causal_lm import CausalFunction

    alphas = np.concatenate([[0.0], np.logspace(-6, 0, n_points - 1)])  # dense next to the baseline
    coarse = (n_points - 1) // 20
    print(f"\n## f(alpha * x) at alpha = 0 and {n_points - 1} log-spaced alphas from 1e-6 to 1, per target (median / "
          f"max). Roughness: total variation on all points / on every {coarse}th (21 points): near 1 when f is "
          "resolved by 21 points, large when it wiggles between them (and so does the IG integrand). Also the share "
          "of the variation at alpha < 0.01, next to the zero baseline, where quadrature nodes are few.")
    print(f"{'model':18} {'roughness':>18} {'share at alpha<0.01':>20}")
    for name in models:
        lm = load_model(name)
        ids = token_ids(lm, name, n_generated)
        positions = np.arange(N_PROMPT, len(ids), every)
        with frozen_model(lm.model):
            job = AttributionJob(CausalFunction(lm.spec, torch.tensor([ids]), positions))
            e = job.inputs[0].embeddings
            f = torch.cat([job.values([torch.cat([a * e for a in torch.tensor(alphas[i:i + 40], dtype=e.dtype)])])
                           for i in range(0, n_points, 40)]).double().numpy()  # (n_points, n_targets)
        steps = np.abs(np.diff(f, axis=0))
        roughness = steps.sum(0) / np.abs(np.diff(f[::coarse], axis=0)).sum(0)
        near_zero = steps[alphas[1:] <= 0.01].sum(0) / steps.sum(0)
        print(f"{name:18} {np.median(roughness):8.2f} / {roughness.max():7.2f} {np.median(near_zero):9.1%} / "
              f"{near_zero.max():7.1%}", flush=True)


def scaling_table(models, generated_list, n_steps: int) -> None:
    print(f"\n## Our time vs number of generated tokens ({N_PROMPT}-token prompt; IG n_steps={n_steps})")
    print(f"{'model':18} {'generated':>9} {'grad_x_input s':>15} {'ig s':>8} {'ig s / target':>14}")
    for name in models:
        lm = load_model(name)
        all_ids = token_ids(lm, name, max(generated_list))
        ours(lm, all_ids[:6], np.array([4, 5]), "ig", 2)  # warm-up
        for n_generated in generated_list:
            ids = all_ids[: N_PROMPT + n_generated]
            positions = np.arange(N_PROMPT, len(ids))
            times = []
            for method in ("grad_x_input", "ig"):
                start = time.perf_counter()
                ours(lm, ids, positions, method, n_steps)
                times.append(time.perf_counter() - start)
            print(f"{name:18} {n_generated:9d} {times[0]:15.2f} {times[1]:8.2f} {times[1] / n_generated:14.3f}",
                  flush=True)


DEMO_PROMPT = "The keys to the cabinet"
BASELINE_SETTINGS = {  # (baseline, keep): step counts tried (every one on the fast GPT-2-like model)
    ("zero", "none"): (32, 64, 128),
    ("zero", "special"): (32, 64, 80, 96, 128),
    ("mean", "special"): (64, 128),
    ("eos", "special"): (64, 128),
}


def baseline_table(models, n_generated: int = 10, settings=None) -> None:
    """IG completeness per baseline / kept positions / n_steps on the issue's text: the demo prompt + 10 generated
    tokens (greedy, SmolLM2); the GPT-2-like model reads the same ids. The default is the cheapest setting whose
    median < 1 % and max < 5 % on both models."""
    settings = settings or BASELINE_SETTINGS
    smol = load_model("smollm2")
    out = smol.generate(DEMO_PROMPT, max_new_tokens=n_generated, progress=False)
    ids, n_input = [int(i) for i in out.token_ids], out.n_input_tokens
    print(f"\n## IG completeness (relative error, median / max over the {len(ids) - n_input} generated tokens) by "
          f"baseline and kept positions; text: {DEMO_PROMPT!r} + {n_generated} generated tokens")
    print(f"{'model':18} {'baseline':9} {'keep':8} {'n_steps':>7} {'median':>9} {'max':>9} {'seconds':>8}")
    for name in models:
        lm = smol if name == "smollm2" else load_model(name)
        for (baseline, keep), steps_list in settings.items():
            for n_steps in (steps_list if name == "smollm2" else (8, 16, 32)):
                start = time.perf_counter()
                res = lm.analyze_ids(ids, n_input_tokens=n_input, attribution=("ig",), n_steps=n_steps,
                                     baseline=baseline, keep=keep, progress=False)
                rel = res.convergence_delta("ig", relative=True)
                print(f"{name:18} {baseline:9} {keep:8} {n_steps:7d} {100 * np.median(rel):8.2f}% "
                      f"{100 * rel.max():8.2f}% {time.perf_counter() - start:8.1f}", flush=True)


def sig_table(models, n_generated: int = 10) -> None:
    """Sequential IG (each token moved alone) against IG with the default, on the same rows: completeness (SIG's
    rows against the sum of per-token drops) and time."""
    smol = load_model("smollm2")
    out = smol.generate(DEMO_PROMPT, max_new_tokens=n_generated, progress=False)
    ids, n_input = [int(i) for i in out.token_ids], out.n_input_tokens
    print(f"\n## Sequential IG vs IG (first token kept), {DEMO_PROMPT!r} + {n_generated} tokens: relative "
          "completeness error median / max, seconds, and the Pearson correlation of SIG rows with IG-96 rows")
    print(f"{'model':18} {'method':6} {'n_steps':>7} {'median':>9} {'max':>9} {'seconds':>8} {'corr w/ IG':>10}")
    for name in models:
        lm = smol if name == "smollm2" else load_model(name)
        reference = None
        for method, n_steps in (("ig", 96), ("sig", 4), ("sig", 8), ("sig", 16)):
            start = time.perf_counter()
            res = lm.analyze_ids(ids, n_input_tokens=n_input, attribution=(method,), n_steps=n_steps, progress=False)
            seconds = time.perf_counter() - start
            rel = res.convergence_delta(method, relative=True)
            rows = res.attributions(method)
            if reference is None:
                reference = rows
            corr = np.median([np.corrcoef(rows[i, 1:p], reference[i, 1:p])[0, 1]
                              for i, p in enumerate(res.targets)])
            print(f"{name:18} {method:6} {n_steps:7d} {100 * np.median(rel):8.2f}% {100 * rel.max():8.2f}% "
                  f"{seconds:8.1f} {corr:10.3f}", flush=True)


CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "I cannot find the keys to the cabinet. Where did you put them?"},
    {"role": "assistant", "content": "I left them on the kitchen table, next to the fruit bowl."},
    {"role": "user", "content": "And the key to the garage?"},
    {"role": "assistant", "content": "The garage key is hanging on the hook by the front door."},
]


def chat_table(steps_list=(32, 96)) -> None:
    """keep= on a chat transcript (SmolLM2's chat template: <|im_start|>/<|im_end|> around every turn): IG
    completeness of the last answer's tokens with the special tokens kept (the default), the first token only, or
    nothing kept."""
    lm = load_model("smollm2")
    text = lm.tokenizer.apply_chat_template(CHAT, tokenize=False)
    ids = lm.encode(text)
    special = set(lm.tokenizer.all_special_ids)
    answer = lm.encode(CHAT[-1]["content"])
    start = len(ids) - 2 - len(answer)  # the last answer, then <|im_end|> and a newline
    while ids[start:start + len(answer)] != answer:
        start -= 1
    targets = list(range(start, start + len(answer)))
    print(f"\n## keep= on a chat transcript ({len(ids)} tokens, {sum(i in special for i in ids)} special); IG "
          f"completeness (relative error, median / max) over the {len(targets)} tokens of the last answer")
    print(f"{'keep':8} {'kept':>4} {'n_steps':>7} {'median':>9} {'max':>9} {'seconds':>8}")
    for keep in ("special", "first", "none"):
        for n_steps in steps_list:
            begin = time.perf_counter()
            res = lm.analyze_ids(ids, attribution=("ig",), targets=targets, n_steps=n_steps, keep=keep,
                                 progress=False)
            rel = res.convergence_delta("ig", relative=True)
            kept = len(res.attribution_settings.get("kept_positions", []))
            print(f"{keep:8} {kept:4d} {n_steps:7d} {100 * np.median(rel):8.2f}% {100 * rel.max():8.2f}% "
                  f"{time.perf_counter() - begin:8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 generated tokens, fewer settings (about a minute)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both algorithms (default 1: ratios stay stable on a shared machine)")
    parser.add_argument("--baselines", action="store_true", help="only the baseline / kept-positions table")
    parser.add_argument("--chat", action="store_true", help="only the kept-positions table on a chat transcript")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    models = [m for m in args.models.split(",") if m]
    torch.set_num_threads(args.threads)
    from ecco_widgets.errors import CompletenessWarning

    warnings.simplefilter("ignore", CompletenessWarning)  # the completeness table reports what it would say
    if args.chat:
        chat_table()
        return
    if args.baselines:
        baseline_table(models)
        sig_table(models)
        return
    if args.quick:
        speed_table(models, n_generated=5, n_steps=16, threads=args.threads)
        completeness_table(models, n_generated=5, steps_list=(8, 16))
        roughness_table(models, n_generated=5, n_points=201)
        scaling_table(models, generated_list=(5, 10), n_steps=16)
    else:
        speed_table(models, n_generated=20, n_steps=50, threads=args.threads)
        completeness_table(models, n_generated=20, steps_list=(8, 16, 32, 50, 64, 128))
        roughness_table(models, n_generated=20)
        scaling_table(models, generated_list=(10, 20, 40), n_steps=16)
        baseline_table(models)
        sig_table(models)


if __name__ == "__main__":
    main()
