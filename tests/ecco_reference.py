"""Ecco 0.1.2's own results on small seeded models, recorded once into tests/data/ecco_reference.npz, for
tests/test_ecco_compat.py (which needs no Ecco install).

To record them again (Ecco 0.1.2 in its own venv, transformers 4.46; e.g. benchmarks/bench_vs_ecco.py --setup):

    .venv/bin/python tests/ecco_reference.py build /tmp/ecco_ref          # the models, from this venv
    /path/to/ecco-venv/bin/python tests/ecco_reference.py ecco /tmp/ecco_ref tests/data/ecco_reference.npz

The models are seeded random-weight GPT-2s (6 layers and 12 layers, narrow) with the bundled SmolLM2's tokenizer;
``build`` makes the same weights each time in this project's venv, so the test rebuilds them instead of storing them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROMPT = "The keys to the cabinet"
WATCH = [314, 359]  # " is", " are" in SmolLM2's vocabulary
GPT2_CONFIG = {"embedding": "transformer.wte.weight", "type": "causal", "activations": [r"mlp\.c_proj"],
               "token_prefix": "Ġ", "partial_token_prefix": ""}
SHAPES = {"gpt2_6": dict(n_layer=6, n_embd=64, n_head=4), "gpt2_12": dict(n_layer=12, n_embd=16, n_head=2)}


def build(folder: Path) -> dict[str, Path]:
    """Save the seeded models with a tokenizer that transformers 4.46 also reads: {name: folder}."""
    import torch
    import transformers as tf

    from ecco_widgets.models.demo import cache_dir, demo_model

    demo_model()
    tok = tf.AutoTokenizer.from_pretrained(cache_dir() / "smollm2-135m-instruct-fp32")
    paths = {}
    for name, shape in SHAPES.items():
        torch.manual_seed(0)
        config = tf.GPT2Config(n_positions=128, vocab_size=len(tok), bos_token_id=tok.bos_token_id, initializer_range=0.3,
                               eos_token_id=tok.eos_token_id, **shape)
        model = tf.GPT2LMHeadModel(config).eval()
        with torch.no_grad():  # a final norm that is not the identity, so that lenses with and without it differ
            model.transformer.ln_f.weight.uniform_(0.5, 1.5)
        path = folder / name
        model.save_pretrained(path)
        tok.save_pretrained(path)
        settings = json.loads((path / "tokenizer_config.json").read_text())
        settings.update(tokenizer_class="PreTrainedTokenizerFast", model_input_names=["input_ids", "attention_mask"])
        settings.pop("pad_token", None)
        (path / "tokenizer_config.json").write_text(json.dumps(settings))
        (path / "generation_config.json").unlink()  # transformers 4.46 then takes output_hidden_states from config
        paths[name] = path
    return paths


def analysis_inputs():
    """Two (neurons, positions) activation matrices with shared structure, seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.normal(size=(12, 200))
    a = rng.normal(size=(20, 12)) @ base + 0.5 * rng.normal(size=(20, 200))
    b = rng.normal(size=(30, 12)) @ base + 0.8 * rng.normal(size=(30, 200))
    return a, b


def record(folder: Path, out: Path) -> None:  # pragma: no cover - runs in Ecco's venv
    import ecco
    import numpy as np
    from ecco import analysis

    data = {}
    lm = ecco.from_pretrained(str(folder / "gpt2_6"), model_config=GPT2_CONFIG, activations=True, verbose=False,
                              gpu=False)
    output = lm.generate(PROMPT, generate=3, do_sample=False, attribution=["ig", "grad_x_input"])
    data["token_ids"] = output.token_ids[0].numpy()
    for method in ("ig", "grad_x_input"):
        for i, row in enumerate(output.attribution[method]):
            data[f"attribution_{method}_{i}"] = np.asarray(row)
    data["activations"] = output.activations["decoder"]
    data["rankings"] = output.rankings(printJson=True)["rankings"]
    data["watch"] = output.rankings_watch(watch=WATCH, position=5, printJson=True)["rankings"]
    layers = output.layer_predictions(position=6, topk=5, printJson=True)
    data["layer_predictions_probs"] = np.array([[float(t["prob"]) for t in layer] for layer in layers])
    data["step_shapes"] = np.array([list(s.shape) for s in output.decoder_hidden_states])
    data["embedding_shape"] = np.array(list(output.embedding_states.shape))
    second = lm.generate("A different and longer prompt than the first", generate=2, do_sample=False)
    data["first_activations_changed"] = np.array(output.activations["decoder"].shape != data["activations"].shape)
    del second
    inputs = lm.tokenizer([PROMPT + " are"], return_tensors="pt")
    called = lm(inputs)
    data["call_hidden"] = np.stack([h[0].detach().numpy() for h in called.decoder_hidden_states])
    data["call_activations_shape"] = np.array(called.activations["decoder"].shape)
    picked = ecco.from_pretrained(str(folder / "gpt2_6"), model_config=GPT2_CONFIG, activations=True,
                                  activations_layer_nums=[0, 1], verbose=False, gpu=False)
    data["layer_nums_collected"] = np.array(len(picked(inputs).activations.get("decoder", [])))
    deep = ecco.from_pretrained(str(folder / "gpt2_12"), model_config=GPT2_CONFIG, activations=True, verbose=False,
                                gpu=False)
    data["activations_12"] = deep(inputs).activations["decoder"]
    a, b = analysis_inputs()
    for name in ("cka", "cca", "svcca", "pwcca"):
        data[f"analysis_{name}"] = np.array(float(getattr(analysis, name)(a, b)))
    np.savez_compressed(out, **data)


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1] == "build":
        print(build(Path(sys.argv[2])))
    else:
        record(Path(sys.argv[2]), Path(sys.argv[3]))
