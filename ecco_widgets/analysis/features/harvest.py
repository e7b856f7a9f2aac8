"""Activations at one site over many texts, for training and evaluating a dictionary, in bounded memory.

The texts are tokenized, joined (the tokenizer's end-of-text token between them where it has one) and cut into
contexts of ``context`` tokens; each batch of contexts runs through the model only up to the site (the forward is
stopped right after it). The first ``skip_first`` positions of every context are left out: the first token's
residual stream is an outlier of a very large norm (the attention sink) that SAEs are not trained on (SAELens
leaves special tokens out likewise). Rows go into a float16 buffer: in memory, or a memory-mapped ``.npy`` file
when ``path`` is given (a run interrupted later reuses a complete file).

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> spec = discover_spec(GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=50)).eval())
>>> rows = harvest_ids(spec, list(range(1, 40)), "blocks.0.hook_resid_post", tokens=20, context=8, progress=False)
>>> rows.shape, rows.dtype.name     # 5 contexts of 8 tokens, 7 rows each after the first: 20 taken
((20, 8), 'float16')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ...capture import stop_forward, stoppable
from ...errors import InputError
from ...memory import format_bytes, require
from ...progress import progress_bar
from .site_values import read_site
from .sites import Site, resolve

FLOAT16_MAX = 65000.0  # above it a value would not survive the float16 buffer
BATCH_TOKENS = 2048  # tokens per forward


def token_stream(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """The texts' token ids, joined with the end-of-text token where the tokenizer has one."""
    if isinstance(texts, str):
        texts = [texts]
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InputError("No text to harvest activations from: pass a list of non-empty strings.")
    sep = getattr(tokenizer, "eos_token_id", None)
    ids: list[int] = []
    for text in texts:
        ids.extend(int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"])
        if sep is not None:
            ids.append(int(sep))
    return ids


def contexts(ids: Sequence[int], context: int) -> np.ndarray:
    """The stream cut into whole contexts: int64 (n_contexts, context) (a last partial context is dropped)."""
    n = len(ids) // context
    return np.asarray(ids[: n * context], dtype=np.int64).reshape(n, context)


def rows_available(n_tokens: int, context: int, skip_first: int) -> int:
    """How many rows ``n_tokens`` of text give: whole contexts, minus ``skip_first`` rows each."""
    return (n_tokens // context) * (context - skip_first)


def site_hook(spec: Any, site: Site, sink: Any) -> Any:
    """A hook (pre-hook for an input site) giving ``sink`` the site's transformed values as the module held them
    ((batch, n, width), or (batch * n, width) where a family flattens the tokens, as OPT's MLP does), then stopping
    the forward (run it in :func:`~ecco_widgets.capture.stoppable`)."""
    def take(values: torch.Tensor) -> None:
        sink(values)
        stop_forward()
    return read_site(spec, site, take)


def site_batches(spec: Any, windows: np.ndarray, site: Site, batch: int) -> Iterator[torch.Tensor]:
    """The site's values (b, context, width), float32, one batch of contexts at a time."""
    device = next(spec.model.parameters()).device
    for start in range(0, len(windows), batch):
        n_contexts, context = windows[start:start + batch].shape
        got: list[torch.Tensor] = []
        handle = site_hook(spec, site, got.append)
        try:
            with torch.inference_mode(), stoppable():
                spec.model(input_ids=torch.as_tensor(windows[start:start + batch], device=device), use_cache=False)
        finally:
            handle.remove()
        if not got:
            raise InputError(f"{site.describe()} did not run during the forward pass; pass another site.")
        yield got[0].float().reshape(n_contexts, context, got[0].shape[-1])


def harvest_ids(spec: Any, ids: Sequence[int], site: Any, tokens: int, context: int = 128, skip_first: int = 1,
                path: str | Path | None = None, progress: bool | None = None) -> np.ndarray:
    """``tokens`` rows (float16 (tokens, width)) of the site's values over the id stream, in order.

    path: a ``.npy`` file to fill (memory-mapped); when it already holds ``tokens`` complete rows it is reused.
    """
    site = resolve(spec, site) if not isinstance(site, Site) else site
    if not 0 <= skip_first < context:
        raise InputError(f"skip_first ({skip_first}) must be at least 0 and below context ({context}).")
    available = rows_available(len(ids), context, skip_first)
    if tokens < 1 or tokens > available:
        raise InputError(f"Asked for {tokens} rows of activations; the texts give {available} ({len(ids)} tokens in "
                         f"contexts of {context}, the first {skip_first} of each left out). Pass tokens <= "
                         f"{available}, or more text.")
    windows = contexts(ids, context)[: -(-tokens // (context - skip_first))]
    width = site.width or _probe_width(spec, windows[:1], site)
    done_file = Path(str(path) + ".done") if path is not None else None
    if path is not None:
        path = Path(path)
        if done_file.is_file() and path.is_file():
            rows = np.load(path, mmap_mode="r")
            if rows.shape == (tokens, width):
                return rows
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(tokens, width))
    else:
        require(tokens * width * 2, f"A buffer of {tokens} x {width} activations ({format_bytes(tokens * width * 2)})",
                "Pass path=... to keep it on disk, or fewer tokens.")
        rows = np.empty((tokens, width), dtype=np.float16)
    batch = max(1, BATCH_TOKENS // context)
    filled = 0
    with progress_bar(tokens, "activations", progress, "tok") as bar:
        for values in site_batches(spec, windows, site, batch):
            part = values[:, skip_first:].reshape(-1, width)[: tokens - filled]
            peak = float(part.abs().max()) if len(part) else 0.0
            if not np.isfinite(peak) or peak > FLOAT16_MAX:
                raise InputError(f"{site.describe()} holds values up to {peak:.3g}, beyond float16's range; "
                                 "raise skip_first (outlying first tokens) or read another site.")
            rows[filled:filled + len(part)] = part.cpu().numpy().astype(np.float16)
            filled += len(part)
            bar.update(len(part))
            if filled >= tokens:
                break
    if path is not None:
        rows.flush()
        done_file.write_text(f"{tokens} {width}\n")
    return rows


def _probe_width(spec: Any, window: np.ndarray, site: Site) -> int:
    return int(next(site_batches(spec, window[:, :2], site, 1)).shape[-1])


def harvest(lm: Any, texts: Sequence[str], site: Any, tokens: int | None = None, context: int = 128,
            skip_first: int = 1, path: str | Path | None = None, progress: bool | None = None) -> np.ndarray:
    """:func:`harvest_ids` over ``texts`` tokenized by ``lm``; ``tokens=None`` takes every row they give."""
    ids = token_stream(lm._require_tokenizer(), texts)
    if tokens is None:
        tokens = rows_available(len(ids), context, skip_first)
    return harvest_ids(lm.spec, ids, site, tokens, context, skip_first, path, progress)
