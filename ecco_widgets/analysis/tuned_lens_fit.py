"""Training a tuned lens: KL(p_final || p_lens) per layer, as in Belrose et al. (2023), sized for a laptop CPU.

The model runs once over the training text (hooked, no gradients) and its residual stream is kept; then each step
draws ``batch_tokens`` random positions, decodes every layer's translated hidden state through the model's own
final norm and unembedding, and takes one Adam step on all translators (learning rate decayed linearly to 0).
The first position of each window is left out: it is the attention sink, whose hidden state is unlike the others.
On CPUs the decode runs under bfloat16 autocast (2.2x faster matmuls, measured); the loss is float32.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from ecco_widgets.adapter import discover_spec
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50)).eval()
>>> windows = token_windows([list(range(1, 40))], seq_len=16)
>>> [len(w) for w in windows]
[16, 16, 7]
>>> w, b, history = fit_translators_on(discover_spec(model), windows, steps=3, batch_tokens=8, progress=False)
>>> tuple(w.shape), len(history["loss"])
((2, 16, 16), 3)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..capture import capture
from ..errors import InputError
from ..memory import require
from ..progress import progress_bar

FIT_DEFAULTS = {"steps": 100, "batch_tokens": 128, "lr": 3e-3, "seq_len": 256, "max_tokens": 8192, "seed": 0}


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def token_windows(token_lists: Sequence[Sequence[int]], seq_len: int) -> list[list[int]]:
    """Consecutive windows of at most ``seq_len`` tokens from each text's ids (windows of < 2 tokens dropped)."""
    windows = []
    for ids in token_lists:
        for start in range(0, len(ids), seq_len):
            window = list(ids[start:start + seq_len])
            if len(window) >= 2:
                windows.append(window)
    return windows


def text_windows(lm: Any, texts: str | Sequence[str], seq_len: int, max_tokens: int) -> list[list[int]]:
    """Tokenized windows of ``texts`` (one string or several), at most ``max_tokens`` tokens in all."""
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or not texts or not all(isinstance(t, str) for t in texts):
        raise InputError("texts must be a string or a list of strings (e.g. paragraphs of English text).")
    lists, total = [], 0
    for text in texts:
        if total >= max_tokens:
            break
        if text.strip():
            ids = lm.encode(text)[: max_tokens - total]
            lists.append(ids)
            total += len(ids)
    windows = token_windows(lists, seq_len)
    if sum(len(w) - 1 for w in windows) < 1:
        raise InputError("texts hold too little text to train a tuned lens: give at least a few sentences (a few "
                         "thousand tokens train a useful lens).")
    return windows


def residual_streams(spec: Any, windows: list[list[int]], device: Any, progress: bool | None) -> torch.Tensor:
    """(n_layers + 1, n_positions, d_model) in the model's dtype: the residual stream at every position of every
    window but its first, row 0 the embeddings, row l+1 the output of block l (before the final norm)."""
    parts = []
    with progress_bar(len(windows), "tuned lens: reading the text", progress, "window") as bar:
        for window in windows:
            hidden = capture(spec, torch.tensor([window], device=device)).hidden
            parts.append(hidden[:, 1:].cpu())
            bar.update(1)
    return torch.cat(parts, dim=1)


def fit_translators(lm: Any, texts: str | Sequence[str], steps: int = FIT_DEFAULTS["steps"],
                    batch_tokens: int = FIT_DEFAULTS["batch_tokens"], lr: float = FIT_DEFAULTS["lr"],
                    seq_len: int = FIT_DEFAULTS["seq_len"], max_tokens: int = FIT_DEFAULTS["max_tokens"],
                    seed: int = FIT_DEFAULTS["seed"], progress: bool | None = None,
                    bf16_autocast: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """Weights (n_layers, d, d), biases (n_layers, d) and the loss history of a lens trained on ``texts``.

    steps: Adam steps; batch_tokens: positions per step; seq_len: tokens per forward window; max_tokens: how much
    of the text is read; bf16_autocast: decode under bfloat16 autocast (default: on a CPU).
    """
    spec = getattr(lm, "spec", None)
    if spec is None or not getattr(spec, "has_head", False) or not hasattr(lm, "encode"):
        raise InputError("TunedLens.fit needs a causal language model with a head (ew.from_pretrained(...) or "
                         "ew.demo_model()).")
    steps, batch_tokens = _positive_int(steps, "steps"), _positive_int(batch_tokens, "batch_tokens")
    max_tokens = _positive_int(max_tokens, "max_tokens")
    seq_len = _positive_int(seq_len, "seq_len")
    if seq_len < 2:
        raise InputError("seq_len must be at least 2 (a window needs a position after its first).")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 < lr < 1:
        raise InputError(f"lr must be a number between 0 and 1 (Adam's learning rate), got {lr!r}.")
    weight = spec.unembedding.weight
    d_model = int(weight.shape[-1])
    itemsize = torch.empty(0, dtype=weight.dtype).element_size()
    require((spec.n_layers + 1) * max_tokens * d_model * itemsize, "Keeping the residual stream of the training text",
            f"Pass a smaller max_tokens (now {max_tokens}).")
    windows = text_windows(lm, texts, seq_len, max_tokens)
    with lm.lock:
        return fit_translators_on(spec, windows, steps, batch_tokens, lr, seed, progress, bf16_autocast,
                                  device=lm.device)


def fit_translators_on(spec: Any, windows: list[list[int]], steps: int, batch_tokens: int, lr: float = 3e-3,
                       seed: int = 0, progress: bool | None = None, bf16_autocast: bool | None = None,
                       device: Any = "cpu") -> tuple[torch.Tensor, torch.Tensor, dict[str, list[float]]]:
    """The training loop of :func:`fit_translators` over token windows (checked input)."""
    from .attribution.engine import frozen_model

    with frozen_model(spec.model):
        streams = residual_streams(spec, windows, device, progress)  # (L + 1, N, d)
        n_layers, n_positions, d_model = spec.n_layers, streams.shape[1], streams.shape[2]
        head_device = spec.unembedding.weight.device
        if head_device.type == "meta":
            head_device = streams.device
        weights = torch.zeros(n_layers, d_model, d_model, device=head_device, requires_grad=True)
        biases = torch.zeros(n_layers, d_model, device=head_device, requires_grad=True)
        optimizer = torch.optim.Adam([weights, biases], lr=lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
        generator = torch.Generator().manual_seed(seed)
        use_bf16 = head_device.type == "cpu" if bf16_autocast is None else bool(bf16_autocast)
        history: dict[str, list[float]] = {"loss": []}
        with progress_bar(steps, "tuned lens: training", progress, "step") as bar:
            for _ in range(steps):
                index = torch.randint(0, n_positions, (batch_tokens,), generator=generator)
                with torch.no_grad():
                    final = spec.decode(streams[n_layers, index].to(head_device)).float().log_softmax(-1)
                    p_final = final.exp()
                total = 0.0
                for layer in range(n_layers):
                    h = streams[layer, index].to(head_device).float()
                    translated = h + h @ weights[layer].T + biases[layer]
                    with torch.autocast(head_device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        logits = spec.decode(translated)
                    loss = (p_final * (final - logits.float().log_softmax(-1))).sum(-1).mean()
                    loss.backward()
                    total += float(loss.detach())
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                history["loss"].append(total / n_layers)
                bar.update(1)
    return weights.detach().cpu(), biases.detach().cpu(), history


def held_out_kl(lm: Any, texts: str | Sequence[str], lens: Any = None, seq_len: int = 256, max_tokens: int = 4096,
                progress: bool | None = None) -> np.ndarray:
    """Mean KL(p_final || p_layer) in nats per block output, float64 (n_layers,), over the positions of ``texts``
    (each window's first left out), through ``lens`` (a TunedLens) or the logit lens (None). The last row is 0."""
    windows = text_windows(lm, texts, _positive_int(seq_len, "seq_len"), _positive_int(max_tokens, "max_tokens"))
    spec = lm.spec
    sums, count = np.zeros(spec.n_layers), 0
    from .attribution.engine import frozen_model

    with lm.lock, frozen_model(spec.model), torch.inference_mode():
        for window in windows:
            hidden = capture(spec, torch.tensor([window], device=lm.device)).hidden[1:, 1:]  # (L, n - 1, d)
            rows = hidden if lens is None else lens.translate(hidden)
            final = spec.decode(hidden[-1]).float().log_softmax(-1)
            for layer in range(spec.n_layers):
                layer_logp = spec.decode(rows[layer]).float().log_softmax(-1)
                sums[layer] += float((final.exp() * (final - layer_logp)).sum())
            count += hidden.shape[1]
    return sums / max(count, 1)
