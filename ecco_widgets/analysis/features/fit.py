"""Training a sparse autoencoder on a model's activations at one site: harvest, train, checkpoint, save.

``fit(lm, texts, site, ...)`` (``ew.SAE.fit``): the texts' activations at ``site`` are harvested into a float16
buffer (:mod:`.harvest`; a memory-mapped file in ``out``), then a TopK, BatchTopK or JumpReLU dictionary is trained
on them (:mod:`.training`) with Adam, and written in SAELens' layout in ``out`` (:mod:`.saving`) with its settings,
its training curve and, given ``eval_texts``, its held-out metrics (:mod:`.evaluate`) in ``cfg.json``'s metadata.

Checkpoints: every ``checkpoint_every`` steps (and on Ctrl-C) the weights, Adam's moments and the counters go to
``out/checkpoint.safetensors`` with ``out/checkpoint.json``; calling ``fit`` again with the same settings and ``out``
resumes from there (the batches are drawn from per-epoch permutations seeded by ``seed``, so a resumed run equals an
uninterrupted one). A finished ``out`` is loaded, not trained again; other settings in the same ``out`` are refused.

>>> from ecco_widgets.analysis.features.training import TrainSettings
>>> x = torch.randn(512, 8)
>>> weights, log = train_rows(x, width=16, settings=TrainSettings(k=2, batch_size=64), steps=4, progress=False)
>>> weights["W_enc"].shape, log["curve"]["steps"]
(torch.Size([8, 16]), [4])
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ...errors import InputError
from ...progress import progress_bar
from .harvest import harvest_ids, rows_available, token_stream
from .saving import _atomic
from .sites import Site, resolve
from .training import KINDS, TrainSettings, TrainState, folded, init_state, train_step

CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_INFO = "checkpoint.json"
ACTIVATIONS = "activations.npy"
LOG_EVERY = 25  # steps between two points of the training curve


class Batches:
    """Step s's rows of ``rows`` (n, d): per epoch a permutation seeded by (seed, epoch), cut in batches."""

    def __init__(self, rows: Any, batch_size: int, seed: int):
        self.rows, self.batch_size, self.seed = rows, batch_size, seed
        self.per_epoch = max(1, len(rows) // batch_size)
        self._epoch, self._perm = -1, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(len(self.rows), generator=g).numpy()
        index = np.sort(self._perm[j * self.batch_size:(j + 1) * self.batch_size])
        return torch.from_numpy(np.asarray(self.rows[index], dtype=np.float32))


def plain_identity(identity: dict[str, Any] | None) -> dict[str, Any]:
    """A run's identity as its JSON file reads it back (tuples as lists, keys as strings), to compare with one read.

    >>> plain_identity({"shape": (1, 2), 3: "x"})
    {'shape': [1, 2], '3': 'x'}
    """
    return json.loads(json.dumps(identity or {}))


def _optimizer(state: TrainState, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(state.params(), lr=lr, betas=(0.9, 0.999))


def save_checkpoint(folder: Path, state: TrainState, optimizer: torch.optim.Adam, info: dict[str, Any]) -> None:
    """The weights, counters and Adam's moments (safetensors), and the step, scale and curve (JSON)."""
    tensors = {k: v.detach().clone().contiguous() for k, v in state.tensors().items()}
    for i, p in enumerate(state.params()):
        for name, value in optimizer.state.get(p, {}).items():
            tensors[f"adam.{i}.{name}"] = torch.as_tensor(value).detach().clone().reshape(-1).contiguous() \
                if name == "step" else value.detach().clone().contiguous()
    _atomic(folder / CHECKPOINT, lambda p: save_file(tensors, str(p)))
    _atomic(folder / CHECKPOINT_INFO, lambda p: p.write_text(json.dumps({**info, "step": state.step,
                                                                          "scale": state.scale}, indent=1)))


def load_checkpoint(folder: Path, state: TrainState, optimizer: torch.optim.Adam) -> dict[str, Any]:
    info = json.loads((folder / CHECKPOINT_INFO).read_text())
    tensors = load_file(str(folder / CHECKPOINT))
    with torch.no_grad():
        for name, value in state.tensors().items():
            value.copy_(tensors[name])
    params = state.params()
    for i, p in enumerate(params):
        moments = {n.split(".", 2)[2]: t for n, t in tensors.items() if n.startswith(f"adam.{i}.")}
        if moments:
            moments["step"] = moments["step"].reshape(())
            optimizer.state[p] = moments
    state.step, state.scale = int(info["step"]), float(info["scale"])
    return info


def train_rows(rows: Any, width: int, settings: TrainSettings, steps: int, folder: Path | None = None,
               identity: dict[str, Any] | None = None, checkpoint_every: int = 200, progress: bool | None = None,
               on_step: Callable[[int, dict], None] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Trains on ``rows`` (n, d_in) for ``steps`` steps; returns (the folded weights, the log: settings, scale and
    the curve {"steps", "tokens", "mse", "l0", "dead", "aux", "seconds"}). With ``folder``, checkpoints there and
    resumes from a checkpoint whose ``identity`` matches."""
    if len(rows) < settings.batch_size:
        raise InputError(f"{len(rows)} rows of activations are fewer than one batch ({settings.batch_size}); "
                         "harvest more tokens or pass a smaller batch_size.")
    sample = torch.from_numpy(np.asarray(rows[: min(len(rows), 16384)], dtype=np.float32))
    state = init_state(sample, width, settings.kind, settings.seed, settings.initial_threshold)
    optimizer = _optimizer(state, settings.lr)
    curve: dict[str, list] = {k: [] for k in ("steps", "tokens", "mse", "l0", "dead", "aux", "seconds")}
    identity = plain_identity(identity)
    if folder is not None and (folder / CHECKPOINT_INFO).is_file():
        info = json.loads((folder / CHECKPOINT_INFO).read_text())
        if info.get("identity") != identity:
            raise InputError(f"{folder} holds a checkpoint of another training run ({info.get('identity')}); pass "
                             "another out folder, or delete it to start again.")
        curve = load_checkpoint(folder, state, optimizer)["curve"]
    batches = Batches(rows, settings.batch_size, settings.seed)
    started, sums = time.perf_counter() - (curve["seconds"][-1] if curve["seconds"] else 0.0), None
    with progress_bar(steps, "training", progress, "step") as bar:
        bar.update(state.step)
        try:
            while state.step < steps:
                metrics = train_step(state, batches(state.step) * state.scale, settings, optimizer)
                sums = {k: (sums or {}).get(k, 0.0) + v for k, v in metrics.items()}
                if state.step % LOG_EVERY == 0 or state.step == steps:
                    n = (state.step - 1) % LOG_EVERY + 1
                    for key in ("mse", "l0", "dead", "aux"):
                        curve[key].append(round(sums[key] / n, 6))
                    curve["steps"].append(state.step)
                    curve["tokens"].append(state.step * settings.batch_size)
                    curve["seconds"].append(round(time.perf_counter() - started, 3))
                    sums = None
                    bar.set_postfix(mse=curve["mse"][-1], l0=curve["l0"][-1], dead=curve["dead"][-1])
                if folder is not None and (state.step % checkpoint_every == 0):
                    save_checkpoint(folder, state, optimizer, {"identity": identity, "curve": curve})
                bar.update(1)
                if on_step is not None:
                    on_step(state.step, metrics)
        except KeyboardInterrupt:
            if folder is not None:
                save_checkpoint(folder, state, optimizer, {"identity": identity, "curve": curve})
                print(f"Training stopped at step {state.step} of {steps}; the checkpoint in {folder} resumes it: call "
                      "fit again with the same settings and out.", file=sys.stderr)
            raise
    if folder is not None:
        save_checkpoint(folder, state, optimizer, {"identity": identity, "curve": curve})
    return folded(state, settings), {"settings": settings.as_dict(), "scale": state.scale, "curve": curve}


def check_fit_options(kind: str, width: int, k: int, batch_size: int, lr: float) -> None:
    """Refuses bad settings before any model runs."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    for name, value in (("width", width), ("k", k), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} must be a positive integer; got {value!r}.")
    if k > width:
        raise InputError(f"k ({k}) cannot exceed width ({width}).")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise InputError(f"lr must be a positive number; got {lr!r}.")


def fit(lm: Any, texts: Sequence[str], site: Any, kind: str = "topk", width: int | None = None, k: int = 32,
        tokens: int | None = None, epochs: float = 1.0, out: str | Path | None = None, context: int = 128,
        skip_first: int = 1, eval_texts: Sequence[str] | None = None, checkpoint_every: int = 200,
        progress: bool | None = None, on_step: Callable[[int, dict], None] | None = None, *, sae_type: Any,
        **settings: Any) -> Any:
    """Trains a dictionary at ``site`` of ``lm`` on ``texts`` and returns it (read back from ``out``).

    width: latents (default 8 x the site's width); k: active latents per token (topk, batchtopk; jumprelu learns its
    own, pushed by ``l0_coefficient``); tokens: activation rows harvested (default: all the texts give); epochs:
    passes over them; out: the SAELens folder written (default: ``saes/<model>-<site>-<kind>-<width>-k<k>-<tokens>``
    in the working folder, as SAELens writes its checkpoints there); settings: :class:`~.training.TrainSettings`
    fields (batch_size, lr, aux_k, l0_coefficient, seed, ...); sae_type: the SAE class (``SAE.fit`` passes it).
    """
    from .evaluate import evaluate

    unknown = sorted(set(settings) - set(TrainSettings.__dataclass_fields__) - {"kind", "k"})
    if unknown:
        raise InputError(f"Unknown training settings {unknown}; known: {sorted(TrainSettings.__dataclass_fields__)}.")
    train = TrainSettings(kind=kind, k=k, **settings)
    spec = lm.spec
    where = site if isinstance(site, Site) else resolve(spec, site)
    d_in = where.width
    if d_in is None:
        raise InputError(f"The width of {where.describe()} is not known before a forward; pass an ew.Site(width=...).")
    width = 8 * d_in if width is None else width
    check_fit_options(kind, width, k, train.batch_size, train.lr)
    ids = token_stream(lm._require_tokenizer(), texts)
    if tokens is None:
        tokens = rows_available(len(ids), context, skip_first)
    site_name = where.name or f"{where.module}:{where.io}"
    if out is None:
        out = Path("saes") / f"{lm.name.replace('/', '--')}-{site_name}-{kind}-{width}-k{k}-{tokens}"
    out = Path(out)
    identity = plain_identity({"model": lm.name, "site": site_name, "width": width, "tokens": tokens,
                               "epochs": epochs, "context": context, "skip_first": skip_first,
                               "settings": train.as_dict()})
    if (out / "cfg.json").is_file():
        done = sae_type.load(out)
        if done.config.get("metadata", {}).get("training", {}).get("identity") == identity:
            return done
        raise InputError(f"{out} already holds another dictionary; pass another out folder.")
    out.mkdir(parents=True, exist_ok=True)
    rows = harvest_ids(spec, ids, where, tokens, context, skip_first, out / ACTIVATIONS, progress)
    steps = max(1, math.ceil(tokens * epochs / train.batch_size))
    weights, log = train_rows(rows, width, train, steps, out, identity, checkpoint_every, progress, on_step)
    architecture = "topk" if kind == "topk" else "jumprelu"
    site_meta = {"model_name": lm.name, "hook_name": where.name or None, "context_size": context,
                 "prepend_bos": False}
    sae = sae_type(**weights, architecture=architecture, k=k if kind == "topk" else None, site=site_meta,
              format="saelens")
    metadata = {"training": {**log, "identity": identity, "steps": steps, "trained_by": "ecco_widgets"}}
    if where.name is None:
        metadata["ecco_widgets_site"] = {"module": where.module, "io": where.io, "transform": where.transform}
    if eval_texts is not None:
        metadata["evaluation"] = evaluate(sae, lm, eval_texts, site=where, context=context, skip_first=skip_first,
                                          progress=progress)
        metadata["fvu"] = metadata["evaluation"]["fvu"]
    from .saving import save_saelens

    save_saelens(sae, out, metadata)
    (out / ACTIVATIONS).unlink(missing_ok=True)
    Path(str(out / ACTIVATIONS) + ".done").unlink(missing_ok=True)
    return sae_type.load(out)
