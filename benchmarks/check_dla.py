"""ecco_widgets' direct logit attribution against TransformerLens' own: the same weights (random GPT-2 at GPT-2
small's shape, random Llama at SmolLM2-135M's shape, and the bundled SmolLM2-135M itself), the same token ids, target
and foil; TransformerLens runs in its own venv (a subprocess: benchmarks/_dla_tl_worker.py, which says how the
models are loaded there) and computes DLA the way its users do (run_with_cache, decompose_resid / stack_head_results,
logit_attrs); here `lm.analyze_ids(ids, components=True).logit_attribution(position, target, foil, unit=...)`.
Prints, per model and unit, the largest difference (absolute, and relative to the largest |value|) and whether it is
within 1e-4, then the versions.

    python benchmarks/check_dla.py --setup   # once: .venv-tl with torch 2.13 (CPU) and transformer-lens
    python benchmarks/check_dla.py           # the table (a few minutes on 2 cores); .venv-sae also works (--venv)

Compared: "layer": the embedding (TransformerLens' embed + pos_embed) and each attention and MLP with its output bias
(TL's {l}_attn_out / {l}_mlp_out; ours attn_by_layer / mlp_by_layer); "head": every head's output without b_O
(TL's L{l}H{h}; ours "{l}.h{h}"); "total": the logit difference of the model's logits. TransformerLens folds the final
norm's bias into b_U and leaves it out of logit_attrs; ours reports it as "final.bias", not compared. Not part of
`make test`. Results: docs/components.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers as tf

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, Path(__file__).parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import ecco_widgets as ew  # noqa: E402
from check_sae_formats import python_of  # noqa: E402  (benchmarks/: a venv's python)

WORKER = Path(__file__).with_name("_dla_tl_worker.py")
TOLERANCE = 1e-4
PROMPT, TARGET, FOIL = "The Eiffel Tower is in the city of", " Paris", " Rome"


def setup(venv: Path) -> None:
    """The venv with torch 2.13 (CPU: installed first, as a bare torch pulls CUDA's) and transformer-lens."""
    if not python_of(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for package in ("torch==2.13.0", "transformer-lens"):
        subprocess.run([str(python_of(venv)), "-m", "pip", "install", "-q", package], check=True)


def default_venv() -> Path:
    for name in (".venv-tl", ".venv-sae"):  # .venv-sae (benchmarks/check_sae_formats.py) has transformer-lens too
        if list((ROOT / name).glob("lib/python*/site-packages/transformer_lens")):
            return ROOT / name
    return ROOT / ".venv-tl"


def versions(venv: Path) -> str:
    code = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('transformer-lens', 'torch', 'transformers')))")
    return subprocess.run([str(python_of(venv)), "-c", code], capture_output=True, text=True).stdout.strip()


def randomise_norms(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random norm weights (and LayerNorm biases), so that a norm read wrongly cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if "norm" in type(module).__name__.lower() or name.split(".")[-1].startswith("ln"):
                if getattr(module, "weight", None) is not None:
                    module.weight.copy_(torch.rand(module.weight.shape, generator=g) + 0.5)
                if getattr(module, "bias", None) is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
    return model.eval()


def cases(demo: ew.LanguageModel, official_llama: bool) -> list[dict]:
    """{name, model, tokenizer or None, official name TL is asked for first, positions}."""
    torch.manual_seed(0)
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config())  # GPT-2 small: 12 layers, 768 wide, 12 heads, 50257 tokens
    gpt2.config.n_ctx = gpt2.config.n_positions  # TransformerLens reads n_ctx, which transformers 5 dropped
    torch.manual_seed(1)
    llama = tf.LlamaForCausalLM(tf.LlamaConfig(**{k: v for k, v in demo.model.config.to_dict().items()
                                                  if k not in ("architectures", "transformers_version")}))
    found = [
        {"name": "GPT-2 small shape, random", "model": randomise_norms(gpt2, 2), "tokenizer": None,
         "official": "gpt2"},
        {"name": "SmolLM2-135M shape (Llama), random", "model": randomise_norms(llama, 3), "tokenizer": None,
         "official": None},
        {"name": "SmolLM2-135M (trained, bundled)", "model": demo.model, "tokenizer": demo.tokenizer,
         "official": None},
    ]
    if official_llama:  # Llama-3.2-1B's shape: TransformerLens knows its config by name (no hub), 1.2 B parameters
        torch.manual_seed(4)
        config = tf.LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
                                rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                 "original_max_position_embeddings": 8192})
        found.append({"name": "Llama-3.2-1B shape, random", "model": randomise_norms(tf.LlamaForCausalLM(config), 5),
                      "tokenizer": demo.tokenizer, "official": "meta-llama/Llama-3.2-1B"})
    return found


def ours(case: dict, ids: list[int], position: int, target: int, foil: int) -> dict[str, np.ndarray]:
    lm = ew.from_pretrained(case["model"], tokenizer=case["tokenizer"])
    out = lm.analyze_ids(ids, components=True)
    layer = out.logit_attribution(position, target, foil, unit="layer")
    head = out.logit_attribution(position, target, foil, unit="head")
    per_layer = np.concatenate([[layer.embed], np.stack([layer.attn_by_layer, layer.mlp_by_layer], 1).ravel()])
    heads = np.array([v for v, k in zip(head.values, head.kinds) if k == "head"])
    return {"layer": per_layer, "head": heads, "total": np.array([layer.logit])}


def theirs(report: dict) -> dict[str, np.ndarray]:
    labels, values = report["labels"], np.array(report["values"])
    embed = sum(v for lab, v in zip(labels, values) if lab in ("embed", "pos_embed"))
    rest = [v for lab, v in zip(labels, values) if lab not in ("embed", "pos_embed")]  # 0_attn_out, 0_mlp_out, ...
    return {"layer": np.concatenate([[embed], rest]), "head": np.array(report["heads"]),
            "total": np.array([report["logit_diff"]])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true", help="create .venv-tl first")
    parser.add_argument("--venv", type=Path, default=None, help="default: .venv-tl, else .venv-sae")
    parser.add_argument("--official-llama", action="store_true",
                        help="also a random Llama-3.2-1B through from_pretrained('meta-llama/Llama-3.2-1B', "
                             "hf_model=...) (about 15 GB of memory)")
    args = parser.parse_args()
    venv = args.venv or (ROOT / ".venv-tl" if args.setup else default_venv())
    if args.setup:
        setup(venv)
    if not python_of(venv).exists():
        print(f"skipped: no TransformerLens venv at {venv}; run python benchmarks/check_dla.py --setup")
        return
    demo = ew.demo_model()
    failures, notes = 0, []
    with tempfile.TemporaryDirectory(prefix="dla_check_") as tmp_name:
        tmp = Path(tmp_name)
        jobs, expected = [], {}
        for i, case in enumerate(cases(demo, args.official_llama)):
            folder = tmp / f"case{i}"  # no "llama" / "gemma" in the path: TransformerLens reads names as hints
            case["model"].save_pretrained(folder)
            tokenizer_folder = None
            if case["official"] and case["tokenizer"] is not None:
                tokenizer_folder = tmp / f"tokenizer{i}"
                case["tokenizer"].save_pretrained(tokenizer_folder)
            if case["tokenizer"] is not None and case["model"] is demo.model:
                ids, target, foil = demo.encode(PROMPT), demo.single_token_id(TARGET), demo.single_token_id(FOIL)
            else:
                ids = torch.randint(0, 1000, (12,), generator=torch.Generator().manual_seed(i)).tolist()
                with torch.no_grad():
                    logits = case["model"](input_ids=torch.tensor([ids])).logits[0, -1]
                target, foil = int(logits.argmax()), int(logits.argmin())
            for position in (len(ids) - 1, len(ids) // 2):
                key = f"{i}.{position}"
                jobs.append({"id": key, "folder": str(folder), "official": case["official"],
                             "tokenizer": None if tokenizer_folder is None else str(tokenizer_folder),
                             "tokens": ids, "position": position, "target": target, "foil": foil})
                expected[key] = (case["name"], position, ours(case, ids, position, target, foil))
            if case["model"] is not demo.model:
                case["model"] = None  # free it before the next
        (tmp / "jobs.json").write_text(json.dumps(jobs))
        run = subprocess.run([str(python_of(venv)), str(WORKER), str(tmp / "jobs.json"), str(tmp / "report.json")],
                             capture_output=True, text=True, timeout=3000, env={"HF_HUB_OFFLINE": "1",
                                                                                 "PATH": "/usr/bin:/bin"})
        if not (tmp / "report.json").exists():
            sys.exit(f"the worker failed:\n{run.stderr[-4000:]}")
        report = json.loads((tmp / "report.json").read_text())
    print(f"| model | position | unit | components | max abs diff | max rel diff | pass at {TOLERANCE:g} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, (name, position, mine) in expected.items():
        if "error" in report[key]:
            failures += 1
            print(f"| {name} | {position} | - | - | TransformerLens failed: "
                  f"{report[key]['error'].strip().splitlines()[-1][:200]} | | no |")
            continue
        tl = theirs(report[key])
        for unit in ("layer", "head", "total"):
            a, b = mine[unit].astype(np.float64), tl[unit].astype(np.float64)
            if a.shape != b.shape:
                failures += 1
                print(f"| {name} | {position} | {unit} | {a.size} vs {b.size} | shapes differ | | no |")
                continue
            diff = float(np.abs(a - b).max())
            rel = diff / max(float(np.abs(b).max()), 1e-30)
            ok = rel <= TOLERANCE
            failures += not ok
            print(f"| {name} | {position} | {unit} | {a.size} | {diff:.1e} | {rel:.1e} | {'yes' if ok else 'no'} |")
        how = report[key]["how"]
        if report[key].get("official_error"):
            how += (f", after HookedTransformer.from_pretrained({report[key]['official']!r}, hf_model=...) failed "
                    f"offline: {report[key]['official_error']}")
        notes.append(f"{name}: TransformerLens loaded it by {how}")
    for note in dict.fromkeys(notes):
        print(note)
    print(f"TransformerLens venv {venv.name}: {versions(venv)}; ecco_widgets: torch {torch.__version__}, "
          f"transformers {tf.__version__}")
    print(f"{'all' if not failures else failures} {'within' if not failures else 'outside'} {TOLERANCE:g}")


if __name__ == "__main__":
    main()
