"""ecco_widgets' SAE reading against the producers' own code: random dictionaries in every format, architecture and
normalisation that tests/test_sae_formats.py covers (tests/sae_folders.py writes them), loaded and run by SAELens /
sparsify in their own venv (.venv-sae, a subprocess: benchmarks/_sae_formats_worker.py) and by ecco_widgets here;
prints the max abs difference of encode and of decode (the reconstruction, skip connections included) per case.

    python benchmarks/check_sae_formats.py --setup   # once: .venv-sae with torch 2.13 (CPU), sae-lens, eai-sparsify
    python benchmarks/check_sae_formats.py           # the table (about a minute)

The producers cannot share ecco_widgets' venv (SAELens imports transformer_lens, wandb, datasets, simple_parsing;
sparsify needs simple_parsing and more). Not part of `make test`. Results: docs/features.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ecco_widgets.analysis.features import SAE  # noqa: E402
from ecco_widgets.analysis.features.fit import train_rows  # noqa: E402
from ecco_widgets.analysis.features.training import TrainSettings  # noqa: E402
from sae_folders import CASES, D_IN, D_SAE, inputs, write  # noqa: E402

#: dictionaries trained and written by ecco_widgets itself (SAE.fit's trainer, SAE.save): SAELens must load them
TRAINED = ("topk", "batchtopk", "jumprelu")


def write_trained(kind: str, folder: Path) -> Path:
    """A dictionary trained for a few steps on random rows by ecco_widgets' trainer, saved in SAELens' layout."""
    rows = torch.randn(4096, D_IN, generator=torch.Generator().manual_seed(3))
    weights, _ = train_rows(rows, D_SAE, TrainSettings(kind=kind, k=4, batch_size=256), steps=20, progress=False)
    sae = SAE(**weights, architecture="topk" if kind == "topk" else "jumprelu", k=4 if kind == "topk" else None,
              site={"hook_name": "blocks.3.hook_resid_post", "model_name": "gpt2"})
    return sae.save(folder)

WORKER = Path(__file__).with_name("_sae_formats_worker.py")
TOLERANCE = 1e-5
#: where each Gemma Scope case lies in its (local stand-in of the) hub repository: SAELens reads the site from it
GEMMA_FOLDERS = {
    ("gemma_scope", "jumprelu"): "layer_3/width_16k/average_l0_50",
    ("gemma_scope_2", "jumprelu"): "resid_post/layer_5_width_16k_l0_small",
    ("gemma_scope_2", "jumprelu_transcoder"): "transcoder/layer_5_width_16k_l0_small",
    ("gemma_scope_2", "jumprelu_skip_transcoder"): "transcoder_all/layer_5_width_16k_l0_small_affine",
}


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def setup(venv: Path) -> None:
    if not python_of(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python_of(venv)), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)  # first: the CPU build (a bare torch pulls CUDA's)
    subprocess.run(pip + ["sae-lens", "eai-sparsify"], check=True)


def versions(venv: Path) -> str:
    code = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('sae-lens', 'eai-sparsify', 'transformer-lens', 'torch')))")
    return subprocess.run([str(python_of(venv)), "-c", code], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true", help="create .venv-sae first")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-sae", help="default: .venv-sae")
    args = parser.parse_args()
    if args.setup:
        setup(args.venv)
    if not python_of(args.venv).exists():
        print(f"skipped: no producers' venv at {args.venv}; run python benchmarks/check_sae_formats.py --setup")
        return
    print(f"producers: {versions(args.venv)}; ecco_widgets: torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs, written = [], {}
        x = inputs()
        save_file({"x": x}, str(tmp / "x.safetensors"))
        for i, case in enumerate(CASES):
            sub = GEMMA_FOLDERS.get(case[:2], "")
            root = tmp / f"case{i}"
            written[i] = write(case, root / sub if sub else root)
            jobs.append({"id": str(i), "fmt": case[0], "folder": str(written[i]["folder"]), "root": str(root),
                         "sub": sub, "d_sae": D_SAE, "scale_factor": written[i]["load"].get("scale_factor"),
                         "x": str(tmp / "x.safetensors"), "out": str(tmp / f"out{i}.safetensors")})
        for j, kind in enumerate(TRAINED):
            i = len(CASES) + j
            folder = write_trained(kind, tmp / f"case{i}")
            written[i] = {"folder": folder, "load": {}}
            jobs.append({"id": str(i), "fmt": "saelens", "folder": str(folder), "root": str(folder), "sub": "",
                         "d_sae": D_SAE, "scale_factor": None, "x": str(tmp / "x.safetensors"),
                         "out": str(tmp / f"out{i}.safetensors")})
        (tmp / "jobs.json").write_text(json.dumps(jobs))
        run = subprocess.run([str(python_of(args.venv)), str(WORKER), str(tmp / "jobs.json"), str(tmp / "report.json")],
                             capture_output=True, text=True, timeout=900)
        if not (tmp / "report.json").exists():
            sys.exit(f"the worker failed:\n{run.stderr[-4000:]}")
        report = json.loads((tmp / "report.json").read_text())
        print("| format | architecture | normalisation | variant | dtype | encode max abs diff | decode max abs diff "
              f"| pass at {TOLERANCE:g} |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        failures = 0
        cases = list(CASES) + [("ecco_widgets SAE.fit + save", kind, "none", "") for kind in TRAINED]
        for i, case in enumerate(cases):
            ours = SAE.load(written[i]["folder"], **written[i]["load"])
            fmt, architecture, norm, variant = case
            if report.get(str(i)) != "ok":
                failures += 1
                print(f"| {fmt} | {architecture} | {norm} | {variant or '-'} | {ours.dtype} | producer failed: "
                      f"{report.get(str(i))} | | no |")
                continue
            theirs = load_file(jobs[i]["out"])
            acts = ours.encode(x)
            recon = ours.decode(acts, x_in=x)
            d_enc = (acts.double() - theirs["acts"].double()).abs().max().item()
            d_dec = (recon.double() - theirs["recon"].double()).abs().max().item()
            ok = d_enc <= TOLERANCE and d_dec <= TOLERANCE
            failures += not ok
            dtype = str(ours.dtype).replace("torch.", "")
            print(f"| {fmt} | {architecture} | {norm} | {variant or '-'} | {dtype} | {d_enc:.1e} | {d_dec:.1e} | "
                  f"{'yes' if ok else 'no'} |")
        print(f"{len(cases) - failures} of {len(cases)} cases within {TOLERANCE:g}")


if __name__ == "__main__":
    main()
