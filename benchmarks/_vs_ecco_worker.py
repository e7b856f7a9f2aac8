"""One measurement for bench_vs_ecco.py, run in a fresh process of either venv (Ecco's or ours).

    python benchmarks/_vs_ecco_worker.py JOB.json

JOB.json names the tool ("ecco": Ecco 0.1.2 in .venv-ecco; "ours": ecco_widgets; "hf": plain transformers in our
venv), the model, the workload and its sizes. The model is loaded and the workload is run once small (warm-up: lazy
initialisation, kernels) before the timed call; the result (seconds, CPU seconds, checks; arrays as .npy next to it)
goes to the file JOB names. Jobs "prepare" and "logits" build the model folders and check that both venvs compute
the same logits. Only the timed call is inside the clock; the checks run after it.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

PROMPT = ("In the small village by the sea, the old fisherman told the children a story about the storm that had "
          "taken his boat many years ago, and how he had rowed")  # 34 tokens with SmolLM2's tokenizer
N_PROMPT = 34
WARM_PROMPT = "In the small village by the sea, the old fisherman told"  # 12 tokens
WARM_RANKS = "In the small village"  # Ecco's rank loop costs per cell: keep its warm-up short


def sizes(job: Job, warm: bool) -> tuple[str, int]:
    """(prompt, generated tokens) of the warm-up or of the timed call."""
    if not warm:
        return PROMPT, job["n_new"]
    return (WARM_RANKS if job["workload"] == "ranks" else WARM_PROMPT), 2
ECCO_CONFIGS = {  # Ecco's model-config.yaml entries: GPT-2's is Ecco's own; Llama (SmolLM2) is not in Ecco's list
    "gpt2": {"embedding": "transformer.wte.weight", "type": "causal", "activations": [r"mlp\.c_proj"],
             "token_prefix": "Ġ", "partial_token_prefix": ""},
    "llama": {"embedding": "model.embed_tokens.weight", "type": "causal", "activations": [r"mlp\.down_proj"],
              "token_prefix": "Ġ", "partial_token_prefix": ""},
}
Job = dict[str, Any]


# ----- model folders (job "prepare"; --setup runs it in our venv, then in Ecco's) -----
def prepare_ours(root: Path) -> None:
    """Our venv (transformers 5): the demo cache, and a seeded random distilgpt2-shaped GPT-2 with SmolLM2's
    tokenizer (no GPT-2 tokenizer is available offline), vocab_size set to match."""
    import ecco_widgets as ew
    from ecco_widgets.models.demo import cache_dir
    from transformers import GPT2Config, GPT2LMHeadModel

    lm = ew.demo_model()
    folder = root / "gpt2-random"
    torch.manual_seed(0)
    config = GPT2Config(n_layer=6, n_embd=768, n_head=12, vocab_size=len(lm.tokenizer), bos_token_id=1,
                        eos_token_id=2)
    GPT2LMHeadModel(config).eval().save_pretrained(folder)
    (root / "smollm2-source").write_text(str(cache_dir() / "smollm2-135m-instruct-fp32"))


def prepare_ecco(root: Path) -> None:
    """Ecco's venv (transformers 4.46): a copy of the demo folder that 4.46 reads as saved (rope_theta in
    config.json, which transformers 5 moved into rope_parameters; no pad_token_id; the weights linked) and the tokenizer
    re-saved as a PreTrainedTokenizerFast (4.46 does not know transformers 5's TokenizersBackend), for both models."""
    from transformers import PreTrainedTokenizerFast

    source = Path((root / "smollm2-source").read_text())
    target = root / "smollm2"
    target.mkdir(parents=True, exist_ok=True)
    config = json.loads((source / "config.json").read_text())
    config.setdefault("rope_theta", config.get("rope_parameters", {}).get("rope_theta", 10000.0))
    config["pad_token_id"] = None  # Ecco passes it as an int to a 4.46 helper that wants a tensor (batch 1: no pad)
    (target / "config.json").write_text(json.dumps(config, indent=2))
    shutil.copy(source / "generation_config.json", target / "generation_config.json")
    weights = target / "model.safetensors"
    if not weights.exists():
        weights.symlink_to(source / "model.safetensors")
    special = json.loads((source / "tokenizer_config.json").read_text())
    tokenizer = PreTrainedTokenizerFast(  # no token_type_ids (GPT-2 would add wte[0] to every position), as GPT-2's
        tokenizer_file=str(source / "tokenizer.json"), model_input_names=["input_ids", "attention_mask"],
        **{k: special[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")})
    for folder in (target, root / "gpt2-random"):
        for stale in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / stale).unlink(missing_ok=True)
        tokenizer.save_pretrained(folder)


# ----- loading -----
def model_dir(job: Job) -> str:
    return str(Path(job["root"]) / job["model"])


def load_ecco(job: Job, activations: bool = False):
    import ecco

    family = "llama" if job["model"] == "smollm2" else "gpt2"
    return ecco.from_pretrained(model_dir(job), model_config=dict(ECCO_CONFIGS[family]), activations=activations,
                                verbose=False, gpu=False)


def load_ours(job: Job):
    import ecco_widgets as ew

    return ew.demo_model() if job["model"] == "smollm2" else ew.from_pretrained(model_dir(job))


# ----- Ecco's side: its own calls -----
def record_ecco_ig() -> list:
    """Make Ecco's IG (captum's IntegratedGradients, called by Ecco with its defaults: 50 Gauss-Legendre steps, zero
    baseline) keep what completeness needs: its forward function, the input, the target and sum(attributions).
    Ecco itself only keeps the L2-normalised token scores. Costs one sum per explained token."""
    import ecco.attribution as attribution
    from captum.attr import IntegratedGradients

    records: list = []

    class Recording(IntegratedGradients):
        def attribute(self, inputs, target=None, **kwargs):
            attr = super().attribute(inputs, target=target, **kwargs)
            records.append((self.forward_func, inputs.detach(), int(target), float(attr.detach().double().sum())))
            return attr

    attribution.ATTR_NAME_TO_CLASS["integrated_gradients"] = Recording
    return records


def ecco_generate(lm, prompt: str, n_new: int, methods: list[str]) -> Any:
    """Ecco's generate: greedy, its default hidden-state capture, one captum call per generated token."""
    return lm.generate(prompt, generate=n_new, attribution=methods, do_sample=False, min_new_tokens=n_new)


def saver(path: str) -> Callable[[np.ndarray], dict]:
    def save(array: np.ndarray) -> dict:
        np.save(path, array)
        return {}
    return save


def ecco_rows(out, method: str) -> np.ndarray:
    """Ecco's attribution list (one row per generated token, over its prefix) as a zero-padded matrix."""
    rows = out.attribution[method]
    matrix = np.zeros((len(rows), len(rows[-1]) + 1), dtype=np.float32)
    for i, row in enumerate(rows):
        matrix[i, :len(row)] = row
    return matrix


def ecco_ranks(lm, prompt: str) -> np.ndarray:
    """Ecco's forward (lm(inputs)) + Ecco's OutputSeq.rankings() loop (lm_head of each layer's state, argsort) over
    every prompt position; its plotting call is replaced by one that keeps the matrix it was given."""
    import ecco.lm_plots as plots

    kept: dict = {}
    plots.plot_inner_token_rankings = lambda inputs, outputs, rankings, **kwargs: kept.update(ranks=rankings)
    out = lm(lm.tokenizer(prompt, return_tensors="pt"))
    states = torch.cat(list(out.decoder_hidden_states), dim=0)  # (layers, n, d)
    out.decoder_hidden_states = [states[:, p:p + 1] for p in range(states.shape[1] - 1)]  # rankings' layout
    out.n_input_tokens = 1  # rank of token p + 1 at position p, as ours
    out.rankings()
    return kept["ranks"]


def ecco_workload(job: Job, warm: bool) -> tuple[Callable[[], Any], Callable[[Any], dict]]:
    lm = job["_lm"]
    prompt, n_new = sizes(job, warm)
    workload = job["workload"]
    if workload in ("generate", "grad_x_input", "ig"):
        methods = [] if workload == "generate" else [workload]

        def finish(out) -> dict:
            ids = [int(i) for i in out.token_ids[0]]
            result = {"ids": ids}
            if methods:
                np.save(job["arrays"], ecco_rows(out, workload))
            return result
        return (lambda: ecco_generate(lm, prompt, n_new, methods)), finish
    if workload == "ranks":
        return (lambda: ecco_ranks(lm, prompt)), saver(job["arrays"])
    if workload == "nmf":
        def run():
            out = lm(lm.tokenizer(prompt, return_tensors="pt"))
            return out.run_nmf(n_components=8)
        return run, lambda nmf: {"reconstruction_error": float(nmf.model.reconstruction_err_),
                                 "shape": list(nmf.activations.shape), "n_iter": int(nmf.model.n_iter_)}
    raise ValueError(workload)


def ecco_completeness(records: list) -> list[float]:
    """|sum(attr) - (f(x) - f(0))| / |f(x) - f(0)| per explained token, f being Ecco's own forward function."""
    errors = []
    with torch.no_grad():
        for forward, x, target, total in records:
            change = float(forward(x)[0, target]) - float(forward(torch.zeros_like(x))[0, target])
            errors.append(abs(total - change) / max(abs(change), 1e-12))
    return errors


# ----- our side -----
def ours_workload(job: Job, warm: bool) -> tuple[Callable[[], Any], Callable[[Any], dict]]:
    lm = job["_lm"]
    prompt, n_new = sizes(job, warm)
    workload, gen = job["workload"], {"generation_kwargs": {"min_new_tokens": n_new}, "progress": False}
    if workload == "generate":
        return (lambda: lm.generate(prompt, max_new_tokens=n_new, **gen)), \
            lambda out: {"ids": [int(i) for i in out.token_ids]}
    if workload in ("grad_x_input", "ig"):
        method = workload
        options = {} if method == "grad_x_input" else {
            "n_steps": 2 if warm else job["n_steps"], "baseline": "zero", "keep": job.get("keep", "none")}

        def finish(out) -> dict:
            np.save(job["arrays"], out.attributions(method, "l2_normalized"))
            result = {"ids": [int(i) for i in out.token_ids]}
            if method == "ig":
                result["completeness"] = [float(e) for e in out.convergence_delta("ig", relative=True)]
            return result
        return (lambda: lm.generate(prompt, max_new_tokens=n_new, attribution=(method,), **options, **gen)), finish
    if workload == "ranks":
        return (lambda: lm.analyze(prompt, progress=False).ranks), saver(job["arrays"])
    if workload == "nmf":
        return (lambda: lm.analyze(prompt, activations=True, progress=False).run_nmf(n_components=8)), \
            lambda nmf: {"reconstruction_error": float(nmf.reconstruction_error), "n_iter": int(nmf.n_iter),
                         "shape": [int(nmf.factors.shape[1]), int(nmf.components.shape[1])]}
    raise ValueError(workload)


def ig_calibrate(job: Job) -> dict:
    """Our completeness at each candidate n_steps on the prompt + n_new greedy tokens (not timed)."""
    lm = load_ours(job)
    table = {}
    for n_steps in job["candidates"]:
        out = lm.generate(PROMPT, max_new_tokens=job["n_new"], attribution=("ig",), n_steps=n_steps,
                          baseline="zero", keep=job["keep"], generation_kwargs={"min_new_tokens": job["n_new"]},
                          progress=False)
        errors = out.convergence_delta("ig", relative=True)
        table[n_steps] = [float(np.median(errors)), float(errors.max())]
        if table[n_steps][0] <= job["goal"][0] and table[n_steps][1] <= job["goal"][1]:
            break
    return {"table": table}


def hf_workload(job: Job, warm: bool) -> tuple[Callable[[], Any], Callable[[Any], dict]]:
    """Plain transformers generate (what our lm.generate runs first); afterwards the lens matmul floor: the median
    time of one stacked decode (final norm + unembedding) of every layer x position of the generated sequence."""
    lm = job["_lm"]
    prompt, n_new = sizes(job, warm)
    ids = torch.tensor([lm.encode(prompt)])

    def run():
        with torch.inference_mode():
            return lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_new, do_sample=False,
                                     min_new_tokens=n_new, pad_token_id=lm.tokenizer.pad_token_id)

    def finish(generated) -> dict:
        with torch.inference_mode():
            hidden = torch.stack(lm.model(generated, output_hidden_states=True).hidden_states[1:])[:, 0]
            times = []
            for _ in range(5):
                start = time.perf_counter()
                lm.spec.decode(hidden)
                times.append(time.perf_counter() - start)
        return {"ids": [int(i) for i in generated[0]], "floor_seconds": float(np.median(times))}
    return run, finish


# ----- the job -----
def logits(job: Job) -> dict:
    """Logits of both models on the prompt, and the prompt's ids, saved for the parent to compare."""
    result = {}
    for model in ("smollm2", "gpt2-random"):
        job["model"] = model
        if job["tool"] == "ecco":
            lm = load_ecco(job)
            ids = lm.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
        else:
            lm = load_ours(job)
            ids = torch.tensor([lm.encode(PROMPT)])
        with torch.no_grad():
            np.save(f"{job['arrays']}-{model}.npy", lm.model(ids).logits[0].float().numpy())
        result[model] = [int(i) for i in ids[0]]
    return result


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    torch.set_num_threads(job.get("threads", torch.get_num_threads()))
    warnings.simplefilter("ignore")  # Ecco's torch.tensor(tensor) and transformers' generation warnings
    kind = job["workload"]
    if kind == "prepare":
        (prepare_ecco if job["tool"] == "ecco" else prepare_ours)(Path(job["root"]))
        result: dict = {}
    elif kind == "logits":
        result = logits(job)
    elif kind == "ig_calibrate":
        result = ig_calibrate(job)
    else:
        records: list = []
        if job["tool"] == "ecco":
            job["_lm"] = load_ecco(job, activations=kind == "nmf")
            records = record_ecco_ig() if kind == "ig" else []
            build = ecco_workload
        else:
            job["_lm"] = load_ours(job)
            build = ours_workload if job["tool"] == "ours" else hf_workload
        run, _ = build(job, warm=True)
        run()
        records.clear()
        run, finish = build(job, warm=False)
        start, cpu = time.perf_counter(), time.process_time()
        value = run()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        result = {"seconds": seconds, "cpu_seconds": cpu, **finish(value)}
        if job["tool"] == "ecco" and kind == "ig":
            result["completeness"] = ecco_completeness(records)
    Path(job["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
