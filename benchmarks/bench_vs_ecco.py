"""ecco_widgets vs Ecco 0.1.2 itself (not a re-implementation), side by side in one run on this machine.

Each measurement runs in a fresh subprocess: Ecco in its own venv (torch 2.13 CPU, transformers 4.46.3), ours in
.venv; the two alternate (ecco, ours, ecco, ours, ...; >= 3 pairs per workload), each process warms up on a small
call first (excluded from the time), and the report gives paired ratios (Ecco / ours: median and min-max over the
pairs) and each process's peak RSS (ru_maxrss of the child, model loading included).

Models: the bundled SmolLM2-135M-Instruct (Ecco reads a converted copy: rope_theta in config.json, the tokenizer
re-saved as a PreTrainedTokenizerFast; the logits of both are compared first) and a seeded random distilgpt2-shaped
GPT-2 (6 layers, 768 wide) with SmolLM2's tokenizer (no GPT-2 tokenizer is available offline). Work: a 34-token
prompt, 20 greedy tokens: (i) generate with capture, (ii) + grad x input, (iii) + integrated gradients (Ecco: captum,
50 Gauss-Legendre steps; ours: the fewest steps whose completeness error is no worse; 5 tokens on SmolLM2),
(iv) prompt -> rank matrix, (v) NMF with 8 components of the prompt's MLP activations, (vi) our lm.generate against
plain transformers generate plus the lens matmul floor.

Run (not part of `make test`):
    python benchmarks/bench_vs_ecco.py --setup     # once: .venv-ecco, model folders, logits check (~3 min)
    python benchmarks/bench_vs_ecco.py             # the benchmark (~25 min on 2 cores); --quick: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("_vs_ecco_worker.py")
OURS_PY = ROOT / ".venv" / "bin" / "python"
ECCO_REQUIREMENTS = [  # what Ecco 0.1.2 imports at run time; matplotlib < 3.9 keeps matplotlib.cm.get_cmap
    "transformers==4.46.3", "seaborn", "scikit-learn", "pyyaml", "captum", "matplotlib<3.9", "ipython", "packaging"]
WORKLOADS = ("generate", "grad_x_input", "ig", "ranks", "nmf")
LABELS = {"generate": "generate {n} tokens, capture (no attribution)", "grad_x_input": "generate {n} + grad × input",
          "ig": "generate {n} + integrated gradients", "ranks": "prompt → rank matrix",
          "nmf": "prompt → NMF, 8 components"}
MODELS = {"smollm2": "SmolLM2-135M", "gpt2-random": "distilgpt2-shaped (random)"}
N_PROMPT = 34
EQUAL = (1.01, 1e-4)  # "no worse": within 1 % of Ecco's error, or both below 0.01 % (float32 rounding)


# ----- subprocesses -----
def run_job(python: Path, job: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Run one worker job in a fresh process; its result plus the child's peak RSS (ru_maxrss) in MiB."""
    name = f"{job.get('variant', job['tool']).replace(':', '-')}-{job['model']}-{job['workload']}-{job.get('rep', 0)}"
    job = {**job, "result": str(tmp / f"{name}.json"), "arrays": str(tmp / f"{name}.npy")}
    (tmp / f"{name}.job").write_text(json.dumps(job))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with open(tmp / f"{name}.log", "w") as log:
        proc = subprocess.Popen([str(python), str(WORKER), str(tmp / f"{name}.job")], stdout=log, stderr=log,
                                cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n" + (tmp / f"{name}.log").read_text()[-4000:])
    result = json.loads(Path(job["result"]).read_text())
    result["peak_mb"] = usage.ru_maxrss / 1024
    if Path(job["arrays"]).exists():
        result["array"] = np.load(job["arrays"])
    return result


def ecco_python(ecco_dir: Path) -> Path:
    return ecco_dir / "bin" / "python"


# ----- --setup -----
def setup(ecco_dir: Path, tmp: Path) -> None:
    py = ecco_python(ecco_dir)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ecco_dir)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)  # first: the CPU build (a bare torch pulls CUDA's)
    subprocess.run(pip + ["--no-deps", "ecco==0.1.2"], check=True)  # its pins (scikit-learn~=0.23, ...) are 2021's
    subprocess.run(pip + ECCO_REQUIREMENTS, check=True)
    models = ecco_dir / "models"
    models.mkdir(exist_ok=True)
    base = {"root": str(models), "model": "-", "workload": "prepare"}
    run_job(OURS_PY, {**base, "tool": "ours"}, tmp)
    run_job(py, {**base, "tool": "ecco"}, tmp)
    versions = subprocess.run([str(py), "-c", "import ecco, torch, transformers; print(ecco.__version__, "
                               "torch.__version__, transformers.__version__)"], capture_output=True, text=True)
    print(f"{ecco_dir}: Ecco, torch, transformers = {versions.stdout.strip()}")


def check_logits(ecco_dir: Path, tmp: Path) -> dict[str, float]:
    """Both venvs: the prompt's token ids must be equal; prints the max abs difference of the logits."""
    base = {"root": str(ecco_dir / "models"), "model": "all", "workload": "logits"}
    ecco = run_job(ecco_python(ecco_dir), {**base, "tool": "ecco"}, tmp)
    ours = run_job(OURS_PY, {**base, "tool": "ours"}, tmp)
    diffs = {}
    for model in MODELS:
        assert ecco[model] == ours[model], (model, ecco[model], ours[model])
        a, b = (np.load(tmp / f"{tool}-all-logits-0.npy-{model}.npy") for tool in ("ecco", "ours"))
        diffs[model] = float(np.abs(a - b).max())
        print(f"logits on the {len(ours[model])}-token prompt, {MODELS[model]}: Ecco's model (transformers 4.46) vs "
              f"ours (transformers 5): max abs diff {diffs[model]:.2e} (logits up to {np.abs(b).max():.1f})")
    return diffs


# ----- the benchmark -----
def alternate(tools: dict[str, tuple[Path, dict]], pairs: int, base: dict, tmp: Path,
              first: dict[str, Any] | None = None) -> dict[str, list[dict]]:
    """pairs rounds of (tool 1, tool 2, ...) each in a fresh process; `first` is an Ecco run already made."""
    runs: dict[str, list[dict]] = {tool: [] for tool in tools}
    for rep in range(pairs):
        for tool, (python, extra) in tools.items():
            if rep == 0 and first is not None and tool == "ecco":
                runs[tool].append(first)
                continue
            runs[tool].append(run_job(python, {**base, **extra, "tool": tool.split(":")[0], "rep": rep,
                                               "variant": tool}, tmp))
            print(f"    {tool:14} rep {rep}: {runs[tool][-1]['seconds']:8.2f} s", flush=True)
    return runs


def calibrate(base: dict, keep: str, candidates: tuple[int, ...], goal: tuple[float, float], tmp: Path) -> int:
    """Fewest candidate n_steps whose median and max completeness error are no worse than goal (else the last)."""
    table = run_job(OURS_PY, {**base, "tool": "ours", "workload": "ig_calibrate", "keep": keep,
                              "candidates": list(candidates), "goal": list(goal)}, tmp)["table"]
    for steps, (median, worst) in table.items():
        print(f"    ours, keep={keep!r}, {steps} steps: completeness error median {median:.3%}, max {worst:.3%}")
    met = [int(s) for s, (m, w) in table.items() if m <= goal[0] and w <= goal[1]]
    return met[0] if met else candidates[-1]


def measure(model: str, workload: str, args: argparse.Namespace, ecco_dir: Path, tmp: Path) -> dict[str, Any]:
    n_new = args.ig_tokens_smollm2 if (workload == "ig" and model == "smollm2") else args.tokens
    base = {"root": str(ecco_dir / "models"), "model": model, "workload": workload, "n_new": n_new,
            "threads": args.threads}
    ecco_py = ecco_python(ecco_dir)
    print(f"  {MODELS[model]}: {LABELS[workload].format(n=n_new)}", flush=True)
    tools: dict[str, tuple[Path, dict]] = {"ecco": (ecco_py, {}), "ours": (OURS_PY, {})}
    info: dict[str, Any] = {"n_new": n_new}
    first = None
    if workload == "generate":
        tools["hf"] = (OURS_PY, {})
    if workload == "ig":
        first = run_job(ecco_py, {**base, "tool": "ecco", "rep": 0}, tmp)
        errors = first["completeness"]
        goal = (max(np.median(errors) * EQUAL[0], EQUAL[1]), max(max(errors) * EQUAL[0], EQUAL[1]))
        print(f"    ecco           rep 0: {first['seconds']:8.2f} s; completeness error median "
              f"{np.median(errors):.3%}, max {max(errors):.3%}", flush=True)
        small = (8, 16, 32, 50) if model == "gpt2-random" else (16, 32, 50)
        steps = args.ig_steps or calibrate(base, "none", small, goal, tmp)
        default_steps = args.ig_steps or calibrate(base, "special", small + (64, 96), goal, tmp)
        tools = {"ecco": (ecco_py, {}), "ours": (OURS_PY, {"n_steps": steps, "keep": "none"}),
                 "ours:default": (OURS_PY, {"n_steps": default_steps, "keep": "special"})}
        info.update(steps=steps, default_steps=default_steps)
    info["runs"] = alternate(tools, args.pairs, base, tmp, first)
    return info


# ----- the report -----
def paired(a: list[dict], b: list[dict], key: str = "seconds") -> tuple[float, float, float]:
    ratios = [x[key] / y[key] for x, y in zip(a, b)]
    return statistics.median(ratios), min(ratios), max(ratios)


def median_of(runs: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def seconds_text(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def check_text(workload: str, runs: dict[str, list[dict]], info: dict) -> str:
    """What agrees: tokens, attribution rows, rank cells, completeness, NMF error."""
    ecco, ours = runs["ecco"][-1], runs["ours"][-1]
    same_ids = "ids" not in ecco or ecco["ids"] == ours["ids"]
    notes = [] if same_ids else ["generated tokens differ"]
    if "ids" in ours and len(ours["ids"]) != N_PROMPT + info["n_new"]:
        notes.append(f"{len(ours['ids'])} tokens, not {N_PROMPT} + {info['n_new']}")
    if workload == "grad_x_input" and same_ids:
        a, b = ecco["array"], ours["array"][:, :ecco["array"].shape[1]]
        notes.append(f"same tokens; normalised rows max abs diff {np.abs(a - b).max():.1e}")
    elif workload == "ig":
        e, o, d = (np.asarray(r[-1]["completeness"]) for r in (runs["ecco"], runs["ours"], runs["ours:default"]))
        rows = np.abs(ecco["array"] - ours["array"][:, :ecco["array"].shape[1]]).max() if same_ids else float("nan")
        notes.append(f"completeness error median / max: Ecco (50 steps) {np.median(e):.2%} / {e.max():.2%}, ours "
                     f"({info['steps']} steps, same baseline) {np.median(o):.2%} / {o.max():.2%} (rows vs Ecco's: max "
                     f"abs diff {rows:.1e}), ours default (first token kept, {info['default_steps']} steps) "
                     f"{np.median(d):.2%} / {d.max():.2%}")
    elif workload == "ranks":
        a, b = ecco["array"], ours["array"]
        notes.append(f"{int((a != b).sum())} of {a.size} cells differ ({int((a[-1] != b[-1]).sum())} in the last "
                     "layer): Ecco decodes hidden states without the final norm, ours through it")
    elif workload == "nmf":
        notes.append(f"reconstruction error Ecco {ecco['reconstruction_error']:.1f} ({ecco['n_iter']} iterations, "
                     f"init='random') / ours {ours['reconstruction_error']:.1f} ({ours['n_iter']}, nndsvda), "
                     f"X {ours['shape'][0]} × {ours['shape'][1]}")
    elif workload == "generate":
        notes.append("same tokens" if same_ids else "")
    return "; ".join(n for n in notes if n)


def report(results: dict[tuple[str, str], dict], logit_diffs: dict[str, float], args: argparse.Namespace) -> None:
    rows, verdicts = [], []
    for (model, workload), info in results.items():
        runs = info["runs"]
        variants = [("ours", "")] + ([("ours:default", "ours, default (first token kept)")] if workload == "ig" else [])
        for tool, label in variants:
            ratio = paired(runs["ecco"], runs[tool])
            what = LABELS[workload].format(n=info["n_new"]) + (f" (ours: {info['steps']} steps, Ecco's baseline)"
                                                             if workload == "ig" and not label else "")
            if label:
                what = f"… {label}, {info['default_steps']} steps"
            rows.append(f"| {MODELS[model]} | {what} | {seconds_text(median_of(runs['ecco']))} | "
                        f"{seconds_text(median_of(runs[tool]))} | "
                        f"**{ratio[0]:.2f}×** ({ratio[1]:.2f}–{ratio[2]:.2f}) | "
                        f"{median_of(runs['ecco'], 'peak_mb'):.0f} / {median_of(runs[tool], 'peak_mb'):.0f} MiB | "
                        f"{check_text(workload, runs, info) if not label else ''} |")
            if workload == "grad_x_input":
                verdicts.append(f"grad × input ≥ 3× Ecco, {MODELS[model]}: {ratio[0]:.2f}× → "
                                f"{'met' if ratio[0] >= 3 else 'NOT met'}")
            if workload == "ig":
                e, o = (np.asarray(runs[t][-1]["completeness"]) for t in ("ecco", tool))
                goal = (max(np.median(e) * EQUAL[0], EQUAL[1]), max(e.max() * EQUAL[0], EQUAL[1]))
                equal = bool(np.median(o) <= goal[0] and o.max() <= goal[1])
                path = "first token kept" if label else "Ecco's baseline"
                verdicts.append(f"IG at equal completeness ≥ 5×, {MODELS[model]} ({path}): {ratio[0]:.2f}× → "
                                f"{'met' if ratio[0] >= 5 and equal else 'NOT met'}"
                                + ("" if equal else " (our completeness error is above Ecco's)"))
        if workload == "generate":
            hf, ours = runs["hf"], runs["ours"]
            floor = statistics.median(r["floor_seconds"] for r in hf)
            vs_hf = paired(ours, hf)
            budget = [o["seconds"] / (h["seconds"] + h["floor_seconds"]) for o, h in zip(ours, hf)]
            within = statistics.median(budget)
            rows.append(f"| {MODELS[model]} | ours: lm.generate (lens) / plain HF generate | "
                        f"HF {seconds_text(median_of(hf))} + lens floor {seconds_text(floor)} | "
                        f"{seconds_text(median_of(ours))} | {vs_hf[0]:.2f}× HF ({vs_hf[1]:.2f}–{vs_hf[2]:.2f}); "
                        f"{within:.2f}× (HF + floor) | {median_of(hf, 'peak_mb'):.0f} (HF) / "
                        f"{median_of(ours, 'peak_mb'):.0f} MiB | "
                        f"floor: one stacked decode of all layers × positions |")
            verdicts.append(f"lm.generate with the lens ≤ 1.5× (HF generate + lens floor), {MODELS[model]}: "
                            f"{within:.2f}× → {'met' if within <= 1.5 else 'NOT met'}")
    print(f"\n## Ecco 0.1.2 vs ecco_widgets — {time.strftime('%Y-%m-%d', time.gmtime())}, {cpu_name()}, "
          f"{os.cpu_count()} cores, {args.threads} torch threads, {args.pairs} alternating pairs per row "
          "(medians; ratio: median of the paired Ecco / ours, min–max)\n")
    print("| model | work | Ecco 0.1.2 | ecco_widgets | Ecco / ours | peak RSS Ecco / ours | check |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nLogits, Ecco's model vs ours on the prompt: " + ", ".join(
        f"{MODELS[m]} max abs diff {d:.1e}" for m, d in logit_diffs.items()))
    print("Ranks: Ecco decodes each layer's hidden state with lm_head WITHOUT the final norm; ours decodes through the "
          "final norm (as the model decodes its last layer), so intermediate rows differ by design.")
    print("\n## Targets\n" + "\n".join(f"- {v}" for v in verdicts))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create the Ecco venv and the model folders, then exit")
    parser.add_argument("--ecco-venv", type=Path, default=ROOT / ".venv-ecco", help="default: .venv-ecco")
    parser.add_argument("--pairs", type=int, default=3, help="alternating Ecco/ours pairs per workload (default 3)")
    parser.add_argument("--tokens", type=int, default=20, help="generated tokens (default 20)")
    parser.add_argument("--ig-tokens-smollm2", type=int, default=5, help="generated tokens for IG on SmolLM2")
    parser.add_argument("--ig-steps", type=int, default=None, help="our IG steps (default: calibrated)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads in every process")
    parser.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)}")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"subset of {','.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 tokens, 1 pair, IG 4 steps")
    parser.add_argument("--keep", type=Path, default=None, help="keep the workers' files in this folder")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.ig_tokens_smollm2, args.pairs, args.ig_steps = 2, 2, 1, args.ig_steps or 4
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        if args.setup:
            setup(args.ecco_venv, tmp)
            check_logits(args.ecco_venv, tmp)
            return
        if not ecco_python(args.ecco_venv).exists():
            print(f"skipped: no Ecco venv at {args.ecco_venv}; run python benchmarks/bench_vs_ecco.py --setup first")
            return
        diffs = check_logits(args.ecco_venv, tmp)
        results = {}
        for model in args.models.split(","):
            for workload in args.workloads.split(","):
                results[(model, workload)] = measure(model, workload, args, args.ecco_venv, tmp)
        report(results, diffs, args)


if __name__ == "__main__":
    main()
