"""Activation patching (causal tracing) of a causal LM: restore one (layer, position) of a clean run in a corrupted
run and measure how much of the clean answer comes back; many patches run in one batched forward.

Example::

    lm = ew.demo_model()
    result = ew.patching(lm, "The Eiffel Tower is in the city of", "The Colosseum is in the city of",
                         answer=" Paris", foil=" Rome", points="resid")
    result.effect.shape        # (30, 9): layers x positions, 0 = corrupted, 1 = clean
    result.grid()              # the PatchingGrid view

``points="head"`` restores one attention head's output (its slice of the output projection's input; see
patching_heads.py): the effect is (n_layers, n_heads, n_positions), at the last position unless ``positions=``.

``method="attribution"`` estimates every cell from one clean forward and one corrupted forward + backward
(attribution patching: (clean - corrupted) . d LD / d activation); ``method="both"`` computes both and stores their
agreement.
"""

from __future__ import annotations

import time

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..analysis.patching import agreement, logit_difference, normalised_effect, topk_of
from ..capture import forward_until
from ..patch_hooks import recording, writing
from ..errors import InputError, UnsupportedModelError
from ..memory import require
from ..progress import progress_bar
from ..results.patching import PatchingResult
from ..results.prompt_pair import PromptPair
from .causal_lm import LanguageModel
from .patching_heads import HeadRunner

POINTS = ("resid", "attn", "mlp", "head")
METHODS = ("exact", "attribution", "both")
#: Activations of one batch of patched runs stay below this (estimated before each forward).
PATCH_BUDGET_BYTES = 128 * 2**20
#: Exact patching refuses more (layer, position) runs than this unless asked (``max_runs=``).
MAX_RUNS = 5_000


def _duration(seconds: float) -> str:
    """'40 s', '12 min', '3.1 h'."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


#: Most patched runs in one forward.
MAX_BATCH = 256


def point_modules(spec: Any, points: str) -> list[nn.Module]:
    """The module of each block whose output a patch restores: the block itself ("resid"), what its attention adds
    to the residual stream ("attn"), what its MLP adds ("mlp")."""
    if points == "resid":
        return list(spec.blocks)
    find = spec.attention_branch if points == "attn" else spec.mlp_branch
    modules = [find(layer) for layer in range(spec.n_layers)]
    missing = [layer for layer, m in enumerate(modules) if m is None]
    if missing:
        part = "attention output projection" if points == "attn" else "MLP"
        raise UnsupportedModelError(f"No {part} was found in blocks {missing}, so points={points!r} cannot be "
                                    "patched there; use points='resid' (pass ew.ModelSpec(down_proj=[...]) to name "
                                    "each block's MLP output projection).")
    return modules  # type: ignore[return-value]


def _pieces(lm: LanguageModel, ids: list[int]) -> str:
    raw = lm.tokenizer.convert_ids_to_tokens(ids) if lm.tokenizer is not None else [str(i) for i in ids]
    return f"{len(ids)} tokens {raw}"


def _single(lm: LanguageModel, token: Any, name: str) -> int:
    if isinstance(token, str) and lm.tokenizer is not None:
        ids = lm.tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise InputError(f"{name}={token!r} must be one token (the logit difference compares two tokens), but it "
                             f"splits into {lm.tokenizer.convert_ids_to_tokens(ids)}. Use its first piece, a word that "
                             "is one token (try it with or without a leading space), or a token id.")
    try:
        return lm.single_token_id(token)
    except InputError as error:
        raise InputError(f"{name}={token!r}: {error}") from None


def _pair_prompts(clean: Any, corrupted: Any) -> tuple[Any, Any]:
    """The two prompts' token ids when ``clean`` is an ew.compare(out_a, out_b) PromptPair (A clean, B corrupted;
    each prompt's tokens up to its n_input_tokens, or all of them when nothing was generated)."""
    if not isinstance(clean, PromptPair):
        if corrupted is None:
            raise InputError("patching needs the corrupted prompt: ew.patching(lm, clean, corrupted, answer=..., "
                             "foil=...), or a prompt pair: ew.patching(lm, ew.compare(out_a, out_b), answer=..., ...).")
        return clean, corrupted
    if corrupted is not None:
        raise InputError("A prompt pair holds both prompts: pass ew.patching(lm, pair, answer=..., foil=...) without "
                         "a corrupted prompt.")
    if clean.unit != "token":
        raise InputError("This prompt pair compares words; patching needs tokens: ew.compare the token-level outputs "
                         "(without .by_word()).")

    def prompt(ids: np.ndarray, n_input: int) -> list[int]:
        return [int(i) for i in ids[: n_input or len(ids)]]

    return (prompt(clean.token_ids_a, clean.n_input_tokens_a), prompt(clean.token_ids_b, clean.n_input_tokens_b))


def check_inputs(lm: Any, clean: Any, corrupted: Any, answer: Any, foil: Any, points: Any, method: Any, topk: Any,
                 batch_size: Any) -> tuple[list[int], list[int], int, int]:
    """(clean ids, corrupted ids, answer id, foil id), or an InputError that says what to change; no forward."""
    if not isinstance(lm, LanguageModel):
        raise InputError(f"patching needs a causal language model (ew.from_pretrained / ew.demo_model), got "
                         f"{type(lm).__name__}.")
    if points not in POINTS:
        raise InputError(f"points must be one of {', '.join(map(repr, POINTS))}, got {points!r}: 'resid' restores "
                         "a block's output, 'attn' what its attention adds, 'mlp' what its MLP adds, 'head' one "
                         "attention head's output.")
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}.")
    vocab = lm.vocab_size or 1
    if isinstance(topk, (bool, np.bool_)) or not isinstance(topk, (int, np.integer)) or not 1 <= topk <= vocab:
        raise InputError(f"topk must be an integer from 1 to {vocab}, got {topk!r}.")
    if batch_size is not None and (isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (
            int, np.integer)) or batch_size < 1):
        raise InputError(f"batch_size must be None (chosen from memory) or a positive integer, got {batch_size!r}.")
    if answer is None or foil is None:
        raise InputError("patching needs answer= and foil=: single tokens, the clean and the corrupted prompt's "
                         "answers (e.g. answer=' Paris', foil=' Rome').")
    clean, corrupted = _pair_prompts(clean, corrupted)
    ids = []
    for text, name in ((clean, "clean"), (corrupted, "corrupted")):
        if isinstance(text, str):
            ids.append(lm.check_ids(lm.encode(text), f"The {name} prompt"))
        elif isinstance(text, (list, tuple, np.ndarray)):
            ids.append(lm.check_ids(list(text), f"The {name} prompt"))
        else:
            raise InputError(f"{name} must be a prompt (str) or a list of token ids, got {type(text).__name__}.")
    if len(ids[0]) != len(ids[1]):
        raise InputError("clean and corrupted must tokenize to the same length, so that each position of one has its "
                         f"counterpart in the other: clean is {_pieces(lm, ids[0])}, corrupted is "
                         f"{_pieces(lm, ids[1])}. Reword one of them (e.g. a subject of as many tokens).")
    if ids[0] == ids[1]:
        raise InputError(f"clean and corrupted are the same tokens ({_pieces(lm, ids[0])}): there is nothing to "
                         "restore. Change the corrupted prompt (e.g. another subject).")
    answer_id, foil_id = _single(lm, answer, "answer"), _single(lm, foil, "foil")
    if answer_id == foil_id:
        raise InputError(f"answer and foil are the same token ({answer!r}); the foil is the corrupted prompt's answer,"
                         " e.g. answer=' Paris', foil=' Rome'.")
    return ids[0], ids[1], answer_id, foil_id


def _row_bytes(lm: LanguageModel, n: int) -> int:
    """Activations of one patched run, estimated: the residual stream and its copies, the MLP's width, the
    attention scores, the decoded logits (float32)."""
    config = lm.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    d = int(lm.spec.embedding.weight.shape[-1])
    ff = next((v for k in ("intermediate_size", "n_inner", "ffn_dim") if isinstance(v := getattr(text, k, None), int)),
              None) or 4 * d
    heads = next((v for k in ("num_attention_heads", "n_head", "num_heads") if isinstance(v := getattr(text, k, None),
                 int)), 1)
    itemsize = torch.finfo(lm.dtype).bits // 8
    return n * (16 * d + 4 * ff + 2 * heads * n) * itemsize + 12 * (lm.vocab_size or 1)


class _Runner:
    """Forwards of one model on one prompt length, stopped after the last block and decoded at the last position."""

    def __init__(self, lm: LanguageModel, modules: list[nn.Module]):
        self.lm, self.spec, self.modules = lm, lm.spec, modules

    def logits(self, ids: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """Logits (batch, vocab) after the last position; ids (batch, n) (or inputs_embeds=...)."""
        kwargs = {"inputs_embeds": inputs["inputs_embeds"]} if "inputs_embeds" in inputs else {"input_ids": ids}
        hidden = forward_until(self.spec.blocks[-1], self.spec.model, use_cache=False, **kwargs)
        return self.spec.decode(hidden[:, -1])

    def record(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the points' outputs (n_layers, n, width), logits (vocab,)) of one run, without a graph."""
        with torch.inference_mode(), recording(self.modules) as records:
            logits = self.logits(ids)[0]
        return torch.stack([r[0] for r in records]), logits

    def estimate(self, clean: torch.Tensor, corrupted: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """(clean - corrupted) . gradient at each point: (n_layers, n)."""
        return ((clean.float() - corrupted.float()) * grads.float()).sum(-1)

    def cells(self, n_layers: int, positions: list[int]) -> tuple[list[tuple[int, int]], tuple[int, ...]]:
        """Every (layer, position) patched, and the result's shape (n_layers, len(positions))."""
        return [(layer, p) for layer in range(n_layers) for p in positions], (n_layers, len(positions))

    def patched(self, ids: torch.Tensor, cells: list[tuple[int, int]], clean: torch.Tensor) -> torch.Tensor:
        """Logits (len(cells), vocab): row j is the corrupted run with cell (layer, position) j restored."""
        by_layer: dict[int, list[int]] = {}
        for row, (layer, _) in enumerate(cells):
            by_layer.setdefault(layer, []).append(row)
        plans = {}
        for layer, rows in by_layer.items():
            positions = torch.tensor([cells[r][1] for r in rows])
            plans[layer] = (torch.tensor(rows), positions, clean[layer, positions])
        with torch.inference_mode(), writing(self.modules, plans, len(cells)):
            return self.logits(ids.expand(len(cells), -1))

    def gradients(self, ids: torch.Tensor, answer: int, foil: int,
                  check: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the points' outputs, d LD / d outputs), each (n_layers, n, width), and the logits (vocab,) of one run
        with a graph: one forward, ``check(logits)`` (which may raise), one backward."""
        with torch.inference_mode(False), torch.enable_grad():
            embeds = self.spec.embedding(ids).detach().requires_grad_(True)
            with recording(self.modules, keep_graph=True) as records:
                logits = self.logits(ids, inputs_embeds=embeds)[0]
            check(logits.detach())
            grads = torch.autograd.grad(logit_difference(logits, answer, foil), [r[1] for r in records])
        return (torch.stack([r[0][0] for r in records]),
                torch.stack([g.detach().reshape(r[0].shape)[0] for r, g in zip(records, grads)]), logits.detach())


def patching(lm: LanguageModel, clean: str | PromptPair, corrupted: str | None = None, answer: str | int | None = None,
             foil: str | int | None = None,
             points: str = "resid", method: str = "exact", topk: int = 10, batch_size: int | None = None,
             progress: bool | None = None, max_runs: int | None = MAX_RUNS,
             positions: Sequence[int] | None = None) -> PatchingResult:
    """Activation patching of ``clean`` into ``corrupted`` at every (layer, position) of ``points``.

    clean / corrupted: prompts (text or token ids), or ``clean`` = a prompt pair from ``ew.compare(out_a, out_b)``
    (A is the clean prompt, B the corrupted one) and no ``corrupted``.

    answer / foil: single tokens (or ids), the clean and the corrupted prompt's answers; the measure is the logit
    difference answer - foil after the last position, normalised to 0 (corrupted run) .. 1 (clean run).
    points: "resid" | "attn" | "mlp" | "head" (one attention head: the effect is (n_layers, n_heads, n_positions),
    by default at the last position only, ``positions=[-1]``). method: "exact" (a forward per patch, batched: up to
    ``batch_size`` patches a forward, chosen from memory by default), "attribution" (the gradient estimate), "both"
    (also their agreement).
    topk: how many of each patched run's predictions to keep. max_runs: "exact" and "both" make one patched run per
    (layer, position); more than this many are refused with the time they would take (None: no bound). positions:
    the token positions to patch (negative from the end; default every one): the result has one column per chosen
    position (``result.positions``), e.g. ``positions=pair_positions_that_differ`` on a long pair.
    Returns a PatchingResult (``.grid()`` shows it).
    """
    if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, (int, np.integer))
                                 or max_runs < 1):
        raise InputError(f"max_runs must be a positive integer or None (no bound), got {max_runs!r}.")
    clean_ids, corrupted_ids, answer_id, foil_id = check_inputs(lm, clean, corrupted, answer, foil, points, method,
                                                                topk, batch_size)
    n, n_layers = len(clean_ids), lm.spec.n_layers
    chosen = _positions([-1] if positions is None and points == "head" else positions, n)
    row = _row_bytes(lm, n)
    require(row, "One patched run", "Use a shorter prompt pair.", lm.device)
    rows = int(batch_size) if batch_size is not None else max(1, min(MAX_BATCH, PATCH_BUDGET_BYTES // row))
    runner: Any = HeadRunner(lm.spec, _Runner(lm, []).logits) if points == "head" else _Runner(
        lm, point_modules(lm.spec, points))
    cells, shape = runner.cells(n_layers, chosen)
    device = lm.device
    clean_t, corrupted_t = (torch.tensor([i], device=device) for i in (clean_ids, corrupted_ids))
    with lm.lock:
        started = time.perf_counter()
        clean_values, clean_logits = runner.record(clean_t)
        runs = len(cells)
        if method != "attribution" and max_runs is not None and runs > max_runs:
            seconds = runs * (time.perf_counter() - started)
            names = ("layers", "heads", "positions") if points == "head" else ("layers", "positions")
            axes = " x ".join(f"{n} {name}" for n, name in zip(shape, names))
            raise InputError(f"Exact patching of this pair is {runs:,} patched runs ({axes}), about {_duration(seconds)} here (one run of it took "
                             f"{time.perf_counter() - started:.2g} s); the bound is max_runs={max_runs:,}. Estimate "
                             "every cell at once with method='attribution' (one forward and one backward), then "
                             "patch the positions that matter exactly with positions=[...], or pass max_runs=None "
                             "to run them all.")
        require(clean_values.numel() * clean_values.element_size(), "Keeping the clean run's activations",
                "Use a shorter prompt pair.", device)
        ld_clean = float(logit_difference(clean_logits, answer_id, foil_id))

        def check_gap(logits: torch.Tensor) -> None:
            """The corrupted run's logit difference must differ from the clean one's, else nothing normalises."""
            gap = ld_clean - float(logit_difference(logits, answer_id, foil_id))
            if not abs(gap) > 1e-6 * max(1.0, abs(ld_clean)):
                raise InputError(f"The clean and the corrupted run give the same logit difference {answer!r} - "
                                 f"{foil!r} ({ld_clean:.4g}), so no effect can be normalised. Choose a pair whose "
                                 "answers differ (the foil is what the corrupted prompt predicts).")

        fields: dict[str, Any] = {}
        if method == "exact":
            corrupted_values, corrupted_logits = runner.record(corrupted_t)
            check_gap(corrupted_logits)
        else:  # one corrupted forward + backward gives its logits and the estimate
            corrupted_values, grads, corrupted_logits = runner.gradients(corrupted_t, answer_id, foil_id, check_gap)
        ld_corrupted = float(logit_difference(corrupted_logits, answer_id, foil_id))
        if method != "exact":
            estimate = runner.estimate(clean_values, corrupted_values, grads)
            fields["attribution_effect"] = (estimate / (ld_clean - ld_corrupted)).to("cpu").numpy().astype(
                np.float32)[..., chosen]
        if method in ("exact", "both"):
            fields.update(_exact(runner, corrupted_t, clean_values, cells, shape, rows, answer_id, foil_id, topk,
                                 progress, row))
            fields["effect"] = normalised_effect(fields["logit_diff"], ld_clean, ld_corrupted)
    clean_top, corrupted_top = topk_of(clean_logits, topk), topk_of(corrupted_logits, topk)
    if method == "attribution":
        fields["effect"] = fields["attribution_effect"]
    if method == "both":
        fields["agreement"] = agreement(fields["effect"], fields["attribution_effect"])
    ids = np.unique(np.concatenate([np.ravel(fields.get("topk_ids", np.zeros(0, np.int32))), clean_top[0],
                                    corrupted_top[0]]))
    (clean_tokens, clean_raw), (corrupted_tokens, corrupted_raw) = lm.display(clean_ids), lm.display(corrupted_ids)
    answer, foil = (t if isinstance(t, str) else lm.display([i])[0][0] for t, i in ((answer, answer_id),
                                                                                    (foil, foil_id)))
    return PatchingResult(
        clean_ids=np.asarray(clean_ids, np.int64), corrupted_ids=np.asarray(corrupted_ids, np.int64),
        clean_tokens=clean_tokens, corrupted_tokens=corrupted_tokens, clean_raw_tokens=clean_raw,
        corrupted_raw_tokens=corrupted_raw, answer=str(answer), foil=str(foil), answer_id=answer_id, foil_id=foil_id,
        points=points, method=method, clean_logit_diff=ld_clean, corrupted_logit_diff=ld_corrupted,
        clean_topk_ids=clean_top[0], clean_topk_probs=clean_top[1], corrupted_topk_ids=corrupted_top[0],
        corrupted_topk_probs=corrupted_top[1], vocab_text=lm.vocab_text(ids), model_name=lm.name,
        positions=None if positions is None and points != "head" else np.asarray(chosen, np.int64), **fields)


def _positions(positions: Any, n: int) -> list[int]:
    """The chosen positions, ascending (every one of ``n`` for None); InputError for anything else."""
    if positions is None:
        return list(range(n))
    if isinstance(positions, (str, bytes)) or not hasattr(positions, "__iter__"):
        raise InputError(f"positions must be a list of token positions, got {positions!r}.")
    chosen = list(positions)
    wrong = [p for p in chosen if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer))
             or not -n <= p < n]
    if wrong or not chosen:
        raise InputError(f"positions must be token positions of the pair (0..{n - 1}, or negative from the end), at "
                         f"least one; got {chosen!r}.")
    normalised = sorted({int(p) % n for p in chosen})
    if len(normalised) != len(chosen):
        raise InputError(f"positions {chosen!r} names a position twice.")
    return normalised


def _exact(runner: Any, corrupted: torch.Tensor, clean_values: torch.Tensor, cells: list[tuple[int, ...]],
           shape: tuple[int, ...], rows: int, answer: int, foil: int, topk: int, progress: bool | None,
           row_bytes: int) -> dict[str, np.ndarray]:
    """logit_diff and the top-k of every patched run (``cells``, laid out as ``shape``), ``rows`` patches a forward."""
    diffs = np.zeros(len(cells), np.float32)
    ids = np.zeros((len(cells), topk), np.int32)
    probs = np.zeros((len(cells), topk), np.float32)
    require(min(rows, len(cells)) * row_bytes, f"A batch of {rows} patched runs", "Pass a smaller batch_size=.",
            corrupted.device)
    with progress_bar(len(cells), "patching", progress, "patch") as bar:
        for start in range(0, len(cells), rows):
            chunk = cells[start:start + rows]
            logits = runner.patched(corrupted, chunk, clean_values)
            diffs[start:start + len(chunk)] = logit_difference(logits, answer, foil).to("cpu").numpy()
            ids[start:start + len(chunk)], probs[start:start + len(chunk)] = topk_of(logits, topk)
            bar.update(len(chunk))
    return {"logit_diff": diffs.reshape(shape), "topk_ids": ids.reshape(*shape, topk),
            "topk_probs": probs.reshape(*shape, topk)}
