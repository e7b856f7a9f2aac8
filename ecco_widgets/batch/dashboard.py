"""``ew.feature_dashboard(lm, sae, texts_or_batch_folder)``: a dictionary's features over a dataset, collected in one
pass with bounded memory (:mod:`ecco_widgets.analysis.features.dashboard`), sharded over the processes of
torch.distributed as the batch stage shards prompts, and merged exactly (every process gathers every shard's tables
and merges them in rank order: the same tables as one process).

From texts: one hooked forward per text. From a batch folder (``ew.batch(..., saes=[sae])`` /
``ecco-widgets batch --sae``): the features its rows stored, no forward.

>>> import sys; sys.path.insert(0, "tests")
>>> import torch, zoo, ecco_widgets as ew
>>> from test_foundation import ToyTokenizer, WORDS
>>> lm = ew.LanguageModel(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))
>>> d = lm.spec.model.config.n_embd
>>> sae = ew.SAE(W_enc=torch.eye(d), W_dec=torch.eye(d), b_enc=torch.zeros(d), b_dec=torch.zeros(d))
>>> dash = feature_dashboard(lm, sae, ["w1 w2 w3", "w4 w5"], site="blocks.0.hook_resid_post", k=2, progress=False)
>>> dash.n_docs, dash.n_tokens, dash.top_values.shape == (d, 2)
(2, 5, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..analysis.features.dashboard import EDGES, DashboardCollector
from ..analysis.features.dashboard_run import check_dictionary, collect, promoted_tokens
from ..errors import InputError
from ..results.feature_dashboard import FeatureDashboard
from .distributed import Process, current_process, shard
from .store import MANIFEST


def feature_dashboard(lm: Any, sae: Any, texts_or_batch_folder: Any, features: Sequence[int] | None = None,
                      k: int = 20, window: int = 8, n_samples: int = 40, n_promoted: int = 10, seed: int = 0,
                      site: Any = None, name: str | None = None, progress: bool | None = None,
                      process: Process | None = None) -> FeatureDashboard:
    """The dashboard of ``features`` (default: every latent) of ``sae`` over a list of texts or a batch folder.

    k: top contexts kept per feature; window: tokens shown either side; n_samples: firing tokens sampled per feature
    (uniformly, by a hash seeded with ``seed``; a card shows them by activation quantile); n_promoted: tokens listed
    as promoted / suppressed. site: where the dictionary reads (as in ``lm.analyze(saes=[(sae, site)])``; default
    its files' hook). name: which stored dictionary of a batch folder (when it holds several).
    Everything is checked before the first forward. Under torchrun each process takes every world_size-th text.
    """
    item = check_dictionary(lm.spec, sae, site)
    collector = DashboardCollector(sae.d_sae, features, k=k, window=window, n_samples=n_samples, seed=seed)
    if not isinstance(n_promoted, int) or isinstance(n_promoted, bool) or n_promoted < 0:
        raise InputError(f"n_promoted must be a whole number >= 0, got {n_promoted!r}.")
    process = process or current_process()
    if isinstance(texts_or_batch_folder, (str, Path)) and Path(texts_or_batch_folder).is_dir():
        source, run = str(texts_or_batch_folder), _from_folder(Path(texts_or_batch_folder), item, name)
    else:
        source, run = "texts", _from_texts(lm, texts_or_batch_folder)
    run(collector, process, item, lm, progress)
    merged = _merge(collector, process)
    top = promoted_tokens(lm.spec, sae, merged.features, n=n_promoted)
    return _result(lm, sae, item, merged, top, source)


def _from_texts(lm: Any, texts: Any):
    """The texts tokenised and checked (all of them, before any forward); returns the runner of this shard."""
    if isinstance(texts, (str, bytes)):
        raise InputError("texts is one string: pass a list of texts (or a batch folder that exists), e.g. "
                         "ew.feature_dashboard(lm, sae, [text]).")
    try:
        texts = list(texts)
    except TypeError:
        raise InputError(f"texts must be a list of strings or a batch folder; got {type(texts).__name__}.") from None
    if not texts:
        raise InputError("No texts: pass a non-empty list of texts, or a batch folder.")
    ids = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"Text {i} is {'empty' if isinstance(text, str) else 'a ' + type(text).__name__}: "
                             "every text must hold some words (drop it from the list).")
        ids.append(lm.encode(text))
        lm.check_length(len(ids[-1]), f"Text {i}")

    def run(collector, process, item, lm, progress):
        mine = shard(list(range(len(ids))), process.rank, process.world_size)
        collect(lm.spec, item, ((i, ids[i]) for i in mine), collector, device=lm.device, total=len(mine),
                progress=progress)
    return run


def _from_folder(path: Path, item: dict[str, Any], name: str | None):
    """A batch folder's stored features of this dictionary; returns the runner of this shard."""
    from .reader import BatchResults

    if not (path / MANIFEST).exists():
        raise InputError(f"{path} is a folder but holds no batch run ({MANIFEST}); pass a list of texts, or a folder "
                         "written by ew.batch(..., saes=[sae]) / ecco-widgets batch --sae.")
    results = BatchResults(path)
    stored = results.settings.get("saes") or []
    fits = [s for s in stored if (name is None or s["name"] == name) and s["d_sae"] == item["sae"].d_sae]
    if not fits:
        have = ", ".join(f"{s['name']} (d_sae {s['d_sae']})" for s in stored) or "none"
        raise InputError(f"{path} stores no features of this dictionary (d_sae {item['sae'].d_sae}"
                         f"{', name ' + repr(name) if name else ''}; it stores: {have}). Run ew.batch(lm, prompts, "
                         "out, saes=[sae]) or ecco-widgets batch --sae first, or pass the texts.")
    if len(fits) > 1:
        raise InputError(f"{path} stores several dictionaries of d_sae {item['sae'].d_sae}: choose one with "
                         f"name= ({', '.join(s['name'] for s in fits)}).")
    key = f"features/{fits[0]['name']}"
    item["stored_site"] = fits[0]["site"]

    def run(collector, process, item, lm, progress):
        mine = shard(results.indices(), process.rank, process.world_size)
        for index in mine:
            row = results.row(index)
            if row.get("error"):
                continue
            shape = row[f"{key}/indices.shape"]
            collector.add(index, row["token_ids"], np.asarray(row[f"{key}/indices"]).reshape(shape),
                          np.asarray(row[f"{key}/values"]).reshape(shape))
    return run


def _merge(collector: DashboardCollector, process: Process) -> DashboardCollector:
    """Every shard's tables merged in rank order (on every process); the collector itself when alone."""
    if process.world_size == 1:
        return collector
    import torch.distributed as dist

    states: list[Any] = [None] * process.world_size
    dist.all_gather_object(states, collector.state())
    merged = DashboardCollector(collector.d_sae, collector.features, k=collector.k, window=collector.window,
                                n_samples=collector.n_samples, seed=collector.seed)
    for state in states:
        merged.merge(state)
    return merged


def _result(lm: Any, sae: Any, item: dict[str, Any], c: DashboardCollector, top: dict[str, Any],
            source: str) -> FeatureDashboard:
    order = np.lexsort((c.sample_positions, c.sample_docs, -c.sample_values.astype(np.float64)), axis=-1) \
        if c.n_samples else np.zeros((len(c.features), 0), np.int64)
    sample = {f: np.take_along_axis(getattr(c, f"sample_{f}"), order if getattr(c, f"sample_{f}").ndim == 2 else
                                    order[..., None], axis=1)
              for f in ("values", "docs", "positions", "context_ids", "context_values")}
    used = np.concatenate([c.top_context_ids.reshape(-1), c.sample_context_ids.reshape(-1),
                           top["promoted_ids"].reshape(-1), top["suppressed_ids"].reshape(-1)])
    vocab = np.unique(used[used >= 0])
    shown, raw = lm.display([int(vocab[0])] + vocab.tolist()) if vocab.size else ([""], [""])
    labels = getattr(sae, "labels", None) or {}
    return FeatureDashboard(
        name=item["name"], site=item.get("stored_site") or item["read"].describe(), d_sae=sae.d_sae,
        feature_ids=c.features.copy(), n_tokens=int(c.n_tokens), n_docs=int(c.n_docs), k=c.k, window=c.window,
        top_values=c.top_values, top_docs=c.top_docs, top_positions=c.top_positions,
        top_context_ids=c.top_context_ids, top_context_values=c.top_context_values, fire_counts=c.fire_counts,
        hist=c.hist, hist_edges=EDGES.copy(), vocab_ids=vocab.astype(np.int64), vocab_strings=list(shown[1:]),
        vocab_raw=list(raw[1:]),
        sample_values=sample["values"], sample_docs=sample["docs"], sample_positions=sample["positions"],
        sample_context_ids=sample["context_ids"], sample_context_values=sample["context_values"],
        promoted_ids=top["promoted_ids"], promoted_values=top["promoted_values"],
        suppressed_ids=top["suppressed_ids"], suppressed_values=top["suppressed_values"],
        promoted_note=top["note"], labels=[str(labels.get(int(f), "")) for f in c.features],
        model_name=str(getattr(lm, "name", "")), seed=c.seed, source=source)
