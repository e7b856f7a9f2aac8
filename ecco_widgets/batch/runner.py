"""``ew.batch``: the same analysis over many prompts, this process's shard of them, into one Parquet folder.

>>> import sys, tempfile; sys.path.insert(0, "tests")
>>> import zoo, ecco_widgets as ew
>>> from test_foundation import ToyTokenizer, WORDS
>>> lm = ew.LanguageModel(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))
>>> results = ew.batch(lm, ["w1 w2 w3", "", "w4 w5"], tempfile.mkdtemp(), progress=False)
>>> len(results), results.frame()["error"].fillna("").tolist()
(3, ['', 'empty prompt: nothing to analyse', ''])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..analysis.attribution.checks import check_methods, check_n_steps
from ..models.fingerprint import model_fingerprint
from ..errors import EccoWidgetsError, InputError
from ..progress import progress_bar
from .distributed import Process, current_process, shard
from .reader import BatchResults
from .rows import error_row, output_row
from .store import RunFolder

#: Part files are written after this many prompts (a killed process redoes at most these).
FLUSH_EVERY = 8


def batch(lm: Any, prompts: Sequence[Any], out: str | Path, generate: int = 0, attribution: Sequence[str] = (),
          activations: bool | Sequence[int] = False, n_steps: int | None = None, lens_topk: int = 10,
          keep_hidden_states: bool = False, flush_every: int = FLUSH_EVERY, progress: bool | None = None,
          process: Process | None = None, saes: Any = ()) -> BatchResults:
    """Analyse every prompt (``lm.generate`` when generate > 0, else ``lm.analyze``) into the folder ``out``.

    Under ``torchrun`` / ``accelerate launch`` each process takes its shard (rank, world size from torch.distributed)
    and all write into ``out``; alone, one process takes all. Prompts already in ``out`` are skipped (resume after a
    crash); a prompt that fails (empty, too long, ...) gets a row with its error and the rest go on; warnings (such
    as IG's CompletenessWarning) go into the row's ``warnings`` column instead of the console. Returns the
    results in ``out`` (lazily read; on every process, once all processes are done).
    hidden states are not stored unless keep_hidden_states=True (n_layers + 1 × n_tokens × d_model floats a prompt).
    saes: sparse dictionaries as in ``lm.analyze(text, saes=...)``; each prompt's features are stored in its row
    (``features/<name>/indices`` ...; ``results[i].features`` reads them back).
    """
    options = _check_options(lm, generate, attribution, activations, n_steps, lens_topk, keep_hidden_states,
                             flush_every)
    options["saes"], dictionaries = _check_saes(lm, saes)
    if isinstance(prompts, (str, bytes)):
        raise InputError(f"prompts is one {type(prompts).__name__} ({prompts[:40]!r}), which would run one prompt per "
                         "character: pass a list of prompts, e.g. ew.batch(lm, [text], out).")
    if isinstance(prompts, dict):
        raise InputError("prompts is a dict, which would run its keys: pass a list of prompts (e.g. list(d.values())).")
    texts = list(prompts)
    if not texts:
        raise InputError("No prompts to analyse: pass a non-empty list.")
    process = process or current_process()
    folder = RunFolder(out)
    with folder.lock() if process.rank == 0 else contextlib.nullcontext():  # one run writes into a folder at a time
        return _run(lm, texts, folder, options, process, progress, dictionaries)


def _run(lm: Any, texts: list[Any], folder: RunFolder, options: dict[str, Any], process: Process,
         progress: bool | None, dictionaries: Any = ()) -> BatchResults:
    flush_every = options["flush_every"]
    settings = {k: v for k, v in options.items() if k != "flush_every"}
    fingerprint = hashlib.sha256(json.dumps([t if isinstance(t, str) else repr(t) for t in texts],
                                            ensure_ascii=False).encode()).hexdigest()
    manifest = {"model": lm.name, "model_fingerprint": model_fingerprint(lm.model), "settings": settings,
                "n_prompts": len(texts), "prompts_sha256": fingerprint}
    folder.check_manifest(manifest, write=process.rank == 0)
    process.barrier()  # the manifest exists; every process reads the same parts before any writes
    if process.rank == 0:
        folder.remove_partial_files()
    done = folder.done_indices()
    process.barrier()
    mine = shard([i for i in range(len(texts)) if i not in done], process.rank, process.world_size)
    metadata = {"model": lm.name, "settings": settings}
    rows: list[dict[str, Any]] = []
    desc = "batch" if process.world_size == 1 else f"batch, process {process.rank}/{process.world_size}"
    with progress_bar(len(mine), desc, progress, unit="prompt") as bar:
        for index in mine:
            rows.append(_one_row(lm, index, texts[index], settings, process.rank, dictionaries))
            bar.update(1)
            if len(rows) >= flush_every:
                folder.write_part(rows, process.rank, metadata, settings)
                rows = []
        if rows:
            folder.write_part(rows, process.rank, metadata, settings)
    process.barrier()
    return BatchResults(folder.path)


def _one_row(lm: Any, index: int, text: Any, settings: dict[str, Any], rank: int,
             dictionaries: Any = ()) -> dict[str, Any]:
    """The row of one prompt: its analysis, or the error that stopped it."""
    start = time.perf_counter()
    if not isinstance(text, str):
        return error_row(index, text, f"not text: a {type(text).__name__}", 0.0, rank)
    if not text.strip():
        return error_row(index, text, "empty prompt: nothing to analyse", 0.0, rank)
    options = dict(attribution=tuple(settings["attribution"]), activations=settings["activations"],
                   n_steps=settings["n_steps"], lens_topk=settings["lens_topk"],
                   keep_hidden_states=settings["keep_hidden_states"], progress=False,
                   **({"saes": dictionaries} if dictionaries else {}))
    try:
        with warnings.catch_warnings(record=True) as caught:  # kept in the row, not printed once per prompt
            warnings.simplefilter("always")
            if settings["generate"] > 0:
                out = lm.generate(text, max_new_tokens=settings["generate"], **options)
            else:
                out = lm.analyze(text, **options)
    except EccoWidgetsError as error:
        return error_row(index, text, str(error), time.perf_counter() - start, rank)
    except (RuntimeError, ValueError, MemoryError) as error:  # recorded, so one bad prompt does not stop the rest
        return error_row(index, text, f"{type(error).__name__}: {error}", time.perf_counter() - start, rank)
    row = output_row(out, index, text, time.perf_counter() - start, rank)
    row["warnings"] = "\n".join(f"{w.category.__name__}: {w.message}" for w in caught) or None
    return row


def _check_options(lm: Any, generate: Any, attribution: Sequence[str], activations: Any, n_steps: Any,
                   lens_topk: Any, keep_hidden_states: Any, flush_every: Any) -> dict[str, Any]:
    """Every option checked once, before any prompt: a bad one is an InputError, not an error row per prompt."""
    if isinstance(generate, bool) or not isinstance(generate, int) or generate < 0:
        raise InputError(f"generate must be a whole number of tokens (0: analyse the prompts as given), got "
                         f"{generate!r}.")
    if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
        raise InputError(f"flush_every must be a positive whole number of prompts, got {flush_every!r}.")
    methods = list(check_methods(attribution, internals=True)) if attribution else []
    steps = None if n_steps is None else check_n_steps(n_steps)
    lm.check_options(lens_topk, "float32", lm.vocab_size)
    layers = lm.activation_layers(activations, lm.spec.n_layers)
    return {"generate": generate, "attribution": methods, "n_steps": steps, "lens_topk": lens_topk,
            "activations": layers if layers else False, "keep_hidden_states": bool(keep_hidden_states),
            "flush_every": flush_every}


def _check_saes(lm: Any, saes: Any) -> tuple[list[dict[str, Any]], Any]:
    """(the dictionaries as the manifest describes them, what lm.analyze takes), their sites and widths checked once
    before any prompt (a plug over one token: nothing runs)."""
    if not saes:
        return [], ()
    from ..analysis.features import FeatureRecorder

    items = FeatureRecorder(lm.spec, saes, 1, check=False).items
    described = [{"name": it["name"], "site": it["read"].describe(), "d_sae": it["sae"].d_sae,
                  "format": it["sae"].format, "path": str(it["sae"].path or "")} for it in items]
    return described, {it["name"]: (it["sae"], it["read"] if it["out"] is None else (it["read"], it["out"]))
                       for it in items}
