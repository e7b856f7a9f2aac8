"""ecco_widgets' value zeroing against inseq's own (the method's reference implementation, Mohebbi et al.'s
``ValueZeroing`` in inseq): the same random weights (GPT-2 and Llama with GQA, tiny, random norm weights and biases,
saved with save_pretrained beside the bundled SmolLM2 tokenizer), the same text; inseq runs in its own venv (a
subprocess: benchmarks/_mixing_inseq_worker.py) and gives, for each generated token and each layer (``layers=l``), the
normalised value-zeroing row of the position that predicts it; here ``lm.analyze_ids(ids,
attribution=["value_zeroing"], targets=...).context_mixing("value_zeroing").layers``. Prints, per model, the largest
difference over every target and source token, for the layers below the last (absolute, and relative to the largest
value) and whether it is within 1e-4, and for the last layer: inseq reads the last block's output from the model's
hidden_states, which transformers gives after the final norm, so its last layer compares final-normed states (ours:
the block's output, as for every other layer). Two inseq settings: its default (1 - cosine below 1e-5 set to 0 before
normalising) and that threshold at 0, the plain definition that ours computes.

    python benchmarks/check_mixing.py --setup   # once: .venv-inseq with torch 2.13 (CPU) and inseq
    python benchmarks/check_mixing.py           # the table

inseq has no rollout of value zeroing and no ALTI-Logit: rollout is checked against its definition in
tests/test_context_mixing.py, ALTI-Logit there and against the authors' code (benchmarks/check_alti.py). Ours computes
1 - cos in float64, inseq in float32: the rows differ by inseq's rounding (up to 1e-4 relative on these models). Not
part of `make test`. Results: docs/components.md.
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
from check_dla import randomise_norms  # noqa: E402
from check_sae_formats import python_of  # noqa: E402

WORKER = Path(__file__).with_name("_mixing_inseq_worker.py")
VENV = ROOT / ".venv-inseq"
TOLERANCE = 1e-4
PROMPT, CONTINUATION = "The keys to the cabinet", " are on the kitchen table near the door"


def setup(venv: Path) -> None:
    """The venv with torch 2.13 (CPU: installed first, as a bare torch pulls CUDA's), inseq 0.7.1 and transformers 4
    (inseq's hooks read a block's output as a tuple, which Llama's blocks stopped returning in 4.54)."""
    if not python_of(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python_of(venv)), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    subprocess.run(pip + ["inseq==0.7.1", "transformers==4.53.3"], check=True)  # inseq's hooks need v4 blocks


def versions(venv: Path) -> str:
    code = ("import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
            "('inseq', 'torch', 'transformers')))")
    return subprocess.run([str(python_of(venv)), "-c", code], capture_output=True, text=True).stdout.strip()


def models(vocab: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=3, n_embd=64, n_head=4, n_positions=128, vocab_size=vocab))
    torch.manual_seed(1)
    llama = tf.LlamaForCausalLM(tf.LlamaConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                               num_attention_heads=4, num_key_value_heads=2, vocab_size=vocab,
                                               max_position_embeddings=128))
    return {"gpt2": randomise_norms(gpt2, 2), "llama": randomise_norms(llama, 3)}


def ours(folder: Path, ids: list[int], positions: list[int]) -> np.ndarray:
    """(n_layers, n_targets, n_tokens): our normalised per-layer rows."""
    lm = ew.from_pretrained(str(folder))
    out = lm.analyze_ids(ids, attribution=["value_zeroing"], targets=positions, progress=False)
    return out.context_mixing("value_zeroing").layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", action="store_true", help="build the venv with inseq, then exit")
    parser.add_argument("--venv", type=Path, default=VENV)
    args = parser.parse_args()
    if args.setup:
        setup(args.venv)
        return
    if not python_of(args.venv).exists():
        raise SystemExit(f"No venv at {args.venv}: run python benchmarks/check_mixing.py --setup first.")
    demo = ew.demo_model()
    print(f"value zeroing: ecco_widgets vs inseq ({versions(args.venv)}), text {PROMPT + CONTINUATION!r}")
    print("| model | inseq setting | targets | layers 0..L-2: max abs diff (rel) | last layer: max abs diff |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models(len(demo.tokenizer)).items():
            folder = Path(tmp) / name
            model.save_pretrained(folder)
            demo.tokenizer.save_pretrained(folder)
            job = {"folder": str(folder), "prompt": PROMPT, "text": PROMPT + CONTINUATION,
                   "output": str(Path(tmp) / f"{name}.json")}
            subprocess.run([str(python_of(args.venv)), str(WORKER), json.dumps(job)], check=True,
                           capture_output=True, text=True)
            results = json.loads(Path(job["output"]).read_text())
            for setting, theirs in results.items():
                ids, positions = theirs["ids"], theirs["positions"]
                reference = np.asarray(theirs["layers"], dtype=np.float32)  # (n_layers, n_targets, n_tokens)
                mine = ours(folder, ids, positions)[:, :, :reference.shape[-1]]
                diff = np.abs(mine - reference)
                inner = float(diff[:-1].max())
                rel = inner / float(np.abs(reference[:-1]).max())
                print(f"| random {name} | {setting} | {len(positions)} | {inner:.1e} ({rel:.1e}) "
                      f"{'within' if inner <= TOLERANCE else 'NOT within'} 1e-4 | {float(diff[-1].max()):.1e} |")

if __name__ == "__main__":
    main()
