"""ecco_widgets' ALTI-Logit against the authors' own code (Ferrando et al. 2023, github.com/mt-upc/logit-explanations,
commit fadf415): the same random weights (GPT-2, OPT and BLOOM: the three families the authors' config maps; random
norm weights and biases, random linear biases so that the value and output-projection biases count), the same
token ids, the same target and foil. The authors' code runs in its own venv (a subprocess:
benchmarks/_alti_authors_worker.py, in a copy of their repository) and gives, per layer, the logit update of each
source token (``logit_aff_x_j``) and the same traced to the input tokens through ALTI (``logit_aff_x_j_alti``);
here ``lm.analyze_ids(ids, attribution=["alti_logit"], targets=[n], contrast=...).context_mixing("alti_logit")``,
``.layers`` and ``.rolled``, and the score (``out.attributions("alti_logit")``, the sum over layers).

Prints, per model and case, the largest difference between the model's own logits on both sides (the same weights),
and the largest absolute difference of the per-layer updates, of the rolled-out updates and of the score, relative
to the largest value, for the target's logit alone and for target − foil (the authors' contrastive explanation);
for the authors' code as it is and with ``pairwise_distance``'s eps (1e-6 added to every component of a difference
before ALTI's L1 distance) at 0, the plain definition that ours computes.

    python benchmarks/check_alti.py --setup [--source DIR]   # once: .venv-alti and a copy of the authors' code
    python benchmarks/check_alti.py                          # the table

The authors pin torch 1.12.1 and transformers 4.20.1, which have no wheels for Python 3.11 (tokenizers 0.12 would
be built from Rust); the venv has torch 2.13 (CPU) and transformers 4.26.1 (the oldest 4.x whose tokenizers has a
3.11 wheel; GPT-2's, OPT's and BLOOM's modules and hook points are those of 4.20), plus what the authors' modules
import (captum 0.4.1, pandas, matplotlib, ipywidgets, python-dotenv, pyaml_env). Their lm_saliency.py reads
``GPT2Config.from_pretrained("gpt2")`` when imported: the copy holds a ``gpt2/config.json`` (GPT-2's default config)
so that nothing is downloaded. Not part of `make test`. Results: docs/components.md.
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
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, Path(__file__).parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import ecco_widgets as ew  # noqa: E402
from check_dla import randomise_norms  # noqa: E402
from check_sae_formats import python_of  # noqa: E402

WORKER = Path(__file__).with_name("_alti_authors_worker.py")
VENV = ROOT / ".venv-alti"
REPOSITORY = "https://github.com/mt-upc/logit-explanations"
COMMIT = "fadf415fd4303d6b251cf921a8ff608362a6d5b1"
FILES = ["src", "extract_explanations.py", "lm_saliency.py", "LICENSE"]
TOLERANCE = 1e-4
#: (prefix, target word, foil word): agreement, and indirect object identification, as in the authors' datasets
CASES = [("The keys to the cabinet", " are", " is"),
         ("The author that the guards like", " smiles", " smile"),
         ("When Mary and John went to the store, John gave a drink to", " Mary", " John")]


def setup(venv: Path, source: str | None) -> None:
    """The venv, and the authors' files at COMMIT in venv/logit-explanations (from ``source``: a git directory or
    checkout; else cloned from GitHub)."""
    if not python_of(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python_of(venv)), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)  # first: a bare torch pulls CUDA's
    subprocess.run(pip + ["--no-deps", "transformers==4.26.1", "tokenizers==0.13.3", "captum==0.4.1"], check=True)
    subprocess.run(pip + ["huggingface-hub<0.20", "regex", "pyyaml", "requests", "tqdm", "filelock", "packaging",
                          "numpy<2", "safetensors", "pyaml_env", "pandas", "matplotlib", "python-dotenv",
                          "ipywidgets"], check=True)
    dest = venv / "logit-explanations"
    dest.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            source = str(Path(tmp) / "clone")
            subprocess.run(["git", "clone", "-q", "--filter=blob:none", "--no-checkout", REPOSITORY, source], check=True)
        archive = subprocess.run(["git", "-C", source, "archive", COMMIT, *FILES], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    code = "from transformers import GPT2Config; GPT2Config().save_pretrained('gpt2')"
    subprocess.run([str(python_of(venv)), "-c", code], check=True, cwd=dest)


def versions(venv: Path) -> str:
    code = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('torch', 'transformers')))")
    return subprocess.run([str(python_of(venv)), "-c", code], capture_output=True, text=True).stdout.strip()


def models(vocab: int) -> dict[str, tuple[str, str, dict]]:
    """name -> (config class, model class, config keywords): the same keywords build it in transformers 4 and 5."""
    return {
        "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_layer=3, n_embd=64, n_head=4, n_positions=128,
                                                       vocab_size=vocab)),
        "opt": ("OPTConfig", "OPTForCausalLM", dict(num_hidden_layers=3, hidden_size=64, num_attention_heads=4,
                                                    ffn_dim=128, word_embed_proj_dim=64, max_position_embeddings=128,
                                                    vocab_size=vocab)),
        "bloom": ("BloomConfig", "BloomForCausalLM", dict(n_layer=3, hidden_size=64, n_head=4, vocab_size=vocab)),
    }


def random_model(config_class: str, model_class: str, kwargs: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = randomise_norms(getattr(tf, model_class)(getattr(tf, config_class)(**kwargs)), seed)
    with torch.no_grad():  # transformers initialises linear biases at 0: random ones, so that they count
        for module in model.modules():
            if type(module).__name__ in ("Linear", "Conv1D") and getattr(module, "bias", None) is not None:
                module.bias.normal_(0.0, 0.05)
    return model.eval()


def first_token(tokenizer, word: str) -> int:
    """The one token of ``word`` (each target and foil is a single token, so that they differ)."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"{word!r} is {len(ids)} tokens; pick a one-token target or foil.")
    return ids[0]


def ours(lm: ew.LanguageModel, ids: list[int], target: int, foil: int | None) -> tuple[np.ndarray, ...]:
    """(layers (n_layers, n), rolled (n_layers, n), score (n,)) of ALTI-Logit for ``target`` after ``ids``."""
    out = lm.analyze_ids(ids + [target], attribution=["alti_logit"], targets=[len(ids)], contrast=foil,
                         progress=False)
    mixing = out.context_mixing("alti_logit")
    n = len(ids)
    return mixing.layers[:, 0, :n], mixing.rolled[:, 0, :n], out.attributions("alti_logit")[0, :n]


def difference(mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    diff = float(np.abs(mine - theirs).max())
    return diff, diff / float(np.abs(theirs).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true", help="build the venv and copy the authors' code, then exit")
    parser.add_argument("--source", help="a git directory or checkout of mt-upc/logit-explanations (for --setup)")
    parser.add_argument("--venv", type=Path, default=VENV)
    args = parser.parse_args()
    if args.setup:
        setup(args.venv, args.source)
        return
    authors = args.venv / "logit-explanations"
    if not python_of(args.venv).exists() or not (authors / "src" / "contributions.py").exists():
        raise SystemExit(f"No venv or authors' code at {args.venv}: run python benchmarks/check_alti.py --setup.")
    tokenizer = ew.demo_model().tokenizer
    print(f"ALTI-Logit: ecco_widgets vs the authors' code ({REPOSITORY} @ {COMMIT[:7]}; {versions(args.venv)})")
    print("| model | text → target (foil) | model logits: max diff | explained | authors' code | per layer: max abs "
          "diff (rel) | rolled: max abs diff (rel) | score: max abs diff (rel) |")
    print("|---|---|---|---|---|---|---|---|")
    worst: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed, (name, (config_class, model_class, kwargs)) in enumerate(models(len(tokenizer)).items()):
            model = random_model(config_class, model_class, kwargs, seed)
            weights = Path(tmp) / f"{name}.safetensors"
            state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
            save_file(state, str(weights))
            cases = [{"ids": tokenizer(prefix)["input_ids"], "target": first_token(tokenizer, target),
                      "foil": first_token(tokenizer, foil), "text": f"{prefix!r} → {target!r} ({foil!r})"}
                     for prefix, target, foil in CASES]
            job = {"config_class": config_class, "model_class": model_class, "config": kwargs,
                   "weights": str(weights), "cases": cases, "output": str(Path(tmp) / f"{name}.json")}
            done = subprocess.run([str(python_of(args.venv)), str(WORKER.resolve()), json.dumps(job)], cwd=authors,
                                  capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"the authors' code failed on {name}:\n{done.stderr[-3000:]}")
            lm = ew.from_pretrained(model, tokenizer=tokenizer)
            results = json.loads(Path(job["output"]).read_text())
            for index, case in enumerate(cases):
                with torch.no_grad():
                    logits = model(torch.tensor([case["ids"]])).logits[0, -1]
                for explained, foil in (("target", None), ("target − foil", case["foil"])):
                    mine = ours(lm, case["ids"], case["target"], foil)
                    for setting, all_theirs in results.items():
                        theirs = all_theirs[index]
                        model_diff = max(abs(float(logits[t]) - v) for t, v in zip((case["target"], case["foil"]),
                                                                                   theirs["logits"]))
                        layers, rolled = np.asarray(theirs["layers"]), np.asarray(theirs["rolled"])
                        if foil is None:
                            ref_layers, ref_rolled = layers[0], rolled[0]
                        else:
                            ref_layers, ref_rolled = layers[0] - layers[1], rolled[0] - rolled[1]
                        cells = [difference(m, r) for m, r in zip(mine, (ref_layers, ref_rolled, ref_rolled.sum(0)))]
                        worst[setting] = max(worst.get(setting, 0.0), *(rel for _, rel in cells))
                        print(f"| random {name} | {case['text']} | {model_diff:.1e} | {explained} | {setting} | "
                              + " | ".join(f"{a:.1e} ({r:.1e})" for a, r in cells) + " |")
    for setting, rel in worst.items():
        print(f"authors' code {setting}: largest relative difference {rel:.1e} "
              f"({'within' if rel <= TOLERANCE else 'NOT within'} 1e-4)")


if __name__ == "__main__":
    main()
