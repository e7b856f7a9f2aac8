"""ecco_widgets' SAE sites against TransformerLens' own hooks: random models of tests/zoo.py (every bias random too)
are saved, loaded into a HookedTransformer in TransformerLens' venv (benchmarks/_sae_sites_tl_worker.py:
from_pretrained's fold_ln, center_writing_weights, center_unembed, fold_value_biases), run on the same token ids;
each TL hook's cached value is compared with what ``lm.analyze(ids, saes=[(sae, hook)])`` reads at that hook on the
plain transformers model (``FeatureRecorder.read``; parallel blocks have no hook_resid_mid). Prints, per model and
hook, the largest absolute difference relative to the largest |value| and whether it is within 1e-4; then the
versions. OPT and Gemma 2 are tried and reported as TransformerLens fails on them. Not part of ``make test``.
Results: docs/features.md.

    python benchmarks/check_sae_sites.py            # .venv-sae (benchmarks/check_sae_formats.py --setup) or .venv-tl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers as tf

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

import ecco_widgets as ew  # noqa: E402
import zoo  # noqa: E402
from ecco_widgets.analysis.features import SAE, FeatureRecorder, resolve  # noqa: E402
from ecco_widgets.capture import capture  # noqa: E402

WORKER = Path(__file__).with_name("_sae_sites_tl_worker.py")
TOLERANCE = 1e-4
TOKENS = [3, 17, 5, 99, 42, 7, 250, 12, 64, 8, 31, 2]
FAMILIES = ["gpt2", "llama", "gpt_neox", "gptj", "opt", "bloom", "qwen2", "gemma2"]
HOOKS = ["hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_mlp_in", "hook_attn_out", "hook_mlp_out",
         "ln2.hook_normalized", "attn.hook_z", "mlp.hook_post"]


def models(families: list[str]) -> dict[str, torch.nn.Module]:
    """tests/zoo.py's random models (norm weights in 0.5..1.5), every bias random too, so that a missed fold shows."""
    found = {}
    for family in families:
        model = zoo.build(family)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0, 0.1)
        if hasattr(model.config, "n_positions"):
            model.config.n_ctx = model.config.n_positions  # TransformerLens reads n_ctx, which transformers 5 dropped
        found[family] = model
    return found


def _parallel(model: torch.nn.Module) -> bool:
    from ecco_widgets.analysis.features.sites import is_parallel

    return is_parallel(ew.from_pretrained(model).spec)


def ours(model: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    lm = ew.from_pretrained(model)
    sites = [resolve(lm.spec, n) for n in names]
    dummy = [SAE(W_enc=torch.eye(s.width), W_dec=torch.eye(s.width), b_enc=torch.zeros(s.width),
                 b_dec=torch.zeros(s.width)) for s in sites]
    recorder = FeatureRecorder(lm.spec, list(zip(dummy, sites)), len(TOKENS), check=False)
    capture(lm.spec, torch.tensor([TOKENS]), plugs=(recorder,))
    return {n: recorder.read(s).float() for n, s in zip(names, sites)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=None, help="TransformerLens' venv (default .venv-sae/.venv-tl)")
    parser.add_argument("--families", nargs="+", default=FAMILIES, help="tests/zoo.py families")
    args = parser.parse_args()
    venv = args.venv or next((ROOT / n for n in (".venv-tl", ".venv-sae")
                              if list((ROOT / n).glob("lib/python*/site-packages/transformer_lens"))), None)
    if venv is None:
        sys.exit("No venv with transformer-lens: run benchmarks/check_sae_formats.py --setup first.")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        found, jobs = models(args.families), []
        for i, (name, model) in enumerate(found.items()):
            folder = Path(tmp) / f"case{i}"  # no "llama" in the path: TransformerLens reads names as hints
            model.save_pretrained(folder)
            n = ew.from_pretrained(model).spec.n_layers
            skip = ("hook_resid_mid",) if found[name] is not None and _parallel(model) else ()
            hooks = [f"blocks.1.{h}" for h in HOOKS if h not in skip] + [f"blocks.{n - 1}.hook_resid_post"]
            jobs.append({"id": name, "folder": str(folder), "tokens": TOKENS, "hooks": hooks})
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        subprocess.run([str(venv / "bin" / "python"), str(WORKER), str(Path(tmp) / "jobs.json"),
                        str(Path(tmp) / "out.json")], check=True)
        report = json.loads((Path(tmp) / "out.json").read_text())
    for job in jobs:
        theirs = report[job["id"]]
        if "error" in theirs:
            print(f"{job['id']}: TransformerLens failed:\n{theirs['error']}")
            continue
        mine = ours(found[job["id"]], job["hooks"])
        for hook in job["hooks"]:
            a, b = mine[hook], torch.tensor(theirs["values"][hook])
            if a.shape != b.shape:
                rows.append((job["id"], hook, f"shape {tuple(a.shape)} vs {tuple(b.shape)}", "no"))
                continue
            diff = float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
            rows.append((job["id"], hook, f"{diff:.1e}", "yes" if diff <= TOLERANCE else "no"))
    print("| model | hook | max abs diff / max abs value | within 1e-4 |\n| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n{sum(r[3] == 'yes' for r in rows)} of {len(rows)} within {TOLERANCE:g}.")
    version = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; "
                              "print('transformer-lens', m.version('transformer-lens'), 'torch', m.version('torch'))"],
                             capture_output=True, text=True).stdout.strip()
    print(f"{version}; here: transformers {tf.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
