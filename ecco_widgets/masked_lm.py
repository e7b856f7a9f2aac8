"""Masked language models (BERT, RoBERTa, DistilBERT, ...): the MLM head as the lens, activations, attention.

A masked LM predicts the token *at* each position (not the next one), so ``out.ranks[l, p]`` is the rank of the
actual token at position p when the output of block l is decoded through the model's own MLM head (BERT's
``cls.predictions``: dense, activation, LayerNorm, decoder; RoBERTa's ``lm_head``; DistilBERT's ``vocab_transform``,
activation, ``vocab_layer_norm``, ``vocab_projector``). The head is found by inspection and checked once against the
model's own logits. ``mask_positions`` replaces tokens by the mask token before the forward pass, so their ranks
say how well each layer recovers the hidden word.

An encoder without an MLM head (e.g. a sentence-embedding BertModel) still gives hidden states, MLP activations
(hence NMF) and attention; anything that needs predictions raises a NotAvailableError that says so.

>>> from transformers import BertConfig, BertForMaskedLM
>>> model = BertForMaskedLM(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
...                                    intermediate_size=64, vocab_size=100)).eval()
>>> mlm = masked_lm(model)
>>> out = mlm.analyze_ids([2, 5, 7, 3], mask_positions=[1], mask_token_id=4)
>>> out.ranks.shape, out.mask_positions.tolist()
((2, 4), [1])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .adapter import ModelSpec, discover_spec
from .analysis.lens import logit_lens
from .capture import capture, check_activation_memory
from .errors import InputError, ModelLoadError, NotAvailableError, UnsupportedModelError
from .lm import LanguageModel
from .result import Output

__all__ = ["MaskedLanguageModel", "MaskedLMOutput", "find_mlm_head", "masked_lm"]

#: Heads that are a chain of modules on the model itself (not one head module): applied in this order.
HEAD_RECIPES: tuple[tuple[str, ...], ...] = (
    ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),  # DistilBERT
    ("generator_predictions", "generator_lm_head"),  # ELECTRA generator
)


class _StopForward(Exception):
    """Raised by the hook on the last block during attribution: the full MLM head at every position is not needed."""


class MaskedLMOutput(Output):
    """An Output of a masked LM. Differences from a causal LM's Output:

    ranks, target_probs: (n_layers, n_tokens), one column per position (the token *at* p, not p+1); for a model
    without an MLM head ranks is empty, shape (n_layers, 0). topk_ids / topk_probs: (n_layers, n_tokens, k).
    mask_positions: int (n_masked,) positions replaced by the mask token; input_ids: what the model saw (token_ids
    hold the true tokens). has_head: whether predictions exist. With attribution=...: targets = mask_positions and
    attributions(method) (n_masked, n_tokens) are non-zero on both sides of each masked position (bidirectional).
    Save/load keeps the arrays but gives back a plain Output (without mask_positions, input_ids and has_head).
    """

    mask_positions: np.ndarray
    input_ids: np.ndarray
    has_head: bool

    def _require_head(self, what: str) -> None:
        if not self.has_head:
            raise NotAvailableError(
                f"{what} needs predictions, but {self.model_name} has no masked-LM head (it is an encoder such as "
                "BertModel). Load a model with its MLM head (AutoModelForMaskedLM); hidden states, activations "
                "(run_nmf, top_neurons) and attention are available."
            )

    def layer_topk(self, position: int, k: int = 10) -> list[dict[str, Any]]:
        """Per layer, the top-k predictions for the token *at* ``position``."""
        self._require_head("layer_topk")
        return super().layer_topk(position, k)

    def watch_ranks(self, tokens: Sequence[str | int], position: int = -1) -> np.ndarray:
        """Ranks, at every layer, of chosen tokens as the prediction for the token at ``position``."""
        self._require_head("watch_ranks")
        return super().watch_ranks(tokens, position)

    def rankings(self, **view_options):
        self._require_head("rankings")
        raise NotAvailableError(
            "The RankGrid view shows next-token ranks (column p predicts token p+1); a masked LM predicts the token "
            "at its own position. Read out.ranks (n_layers, n_tokens) directly, or use out.layer_predictions(p) "
            "and out.rankings_watch([...], position=p)."
        )

    def primary_attributions(self, method: str | None = None, aggregate: str = "l2_normalized",
                             style: str = "minimal", **view_options):
        """SaliencyView of the attributions of each masked position: bidirectional (causal=False), so tokens
        before and after a masked position, and the position itself, are coloured."""
        view_options.setdefault("causal", False)
        return super().primary_attributions(method, aggregate, style, **view_options)

    def copy(self) -> "MaskedLMOutput":
        clone = super().copy()
        return _as_masked(clone, self.mask_positions.copy(), self.input_ids.copy(), self.has_head)


def _as_masked(out: Output, mask_positions: np.ndarray, input_ids: np.ndarray, has_head: bool) -> MaskedLMOutput:
    out.__class__ = MaskedLMOutput
    out.mask_positions = mask_positions
    out.input_ids = input_ids
    out.has_head = has_head
    return out  # type: ignore[return-value]


# ----- finding the head -----
def _probe_ids(model: nn.Module) -> torch.Tensor:
    vocab = getattr(model.config, "vocab_size", None) or 8
    return torch.tensor([[1 + i % max(1, vocab - 1) for i in range(5)]], device=_device(model))


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _head_candidates(model: nn.Module, unembedding_name: str) -> list[tuple[str, list[str], Callable]]:
    """(description, module names, decode callable), most specific first."""
    modules = dict(model.named_modules())
    candidates = []
    if "." in unembedding_name:
        parent_name = unembedding_name.rsplit(".", 1)[0]
        parent = modules[parent_name]
        leaf = unembedding_name.rsplit(".", 1)[1]
        names = [f"{parent_name}.{n}" for n, _ in parent.named_children() if n != leaf]
        candidates.append((f"the head module {parent_name!r}", names, parent))
    for recipe in HEAD_RECIPES:
        if all(name in modules for name in recipe) and recipe[-1] == unembedding_name:
            chain = [modules[name] for name in recipe]

            def run(hidden, chain=chain):
                for module in chain:
                    hidden = module(hidden)
                return hidden

            candidates.append((" -> ".join(recipe), list(recipe[:-1]), run))
    candidates.append((f"the output embedding {unembedding_name!r} alone", [], modules[unembedding_name]))
    return candidates


def find_mlm_head(model: nn.Module, spec: ModelSpec | None = None) -> ModelSpec | None:
    """A ModelSpec whose ``decode`` is the model's MLM head, or None when the model has no output embedding.

    Each candidate (the output embedding's parent module, known chains such as DistilBERT's, the output embedding
    alone) is checked on a short probe: decoding the last block's output must reproduce the model's own logits.
    Raises UnsupportedModelError when none does (pass ModelSpec(decode=...) to name the head yourself).
    """
    spec = spec or ModelSpec()
    if spec.decode is not None:
        return spec
    base = discover_spec(model, spec, require_head=False)
    if base.unembedding_name is None:
        return None
    if spec.final_norm is not None or spec.unembedding is not None:
        return spec  # the user named the head's parts: final norm(s) in order, then the unembedding
    captured = capture(base, _probe_ids(model))
    if captured.logits is None:
        return None
    last = captured.hidden[-1]
    expected = captured.logits.float()
    tolerance = 1e-3 * max(1.0, float(expected.abs().max()))
    tried = []
    with torch.inference_mode():
        for description, names, decode in _head_candidates(model, base.unembedding_name):
            try:
                logits = decode(last).float()
            except Exception as error:  # noqa: BLE001 - a candidate that cannot run is just not the head
                tried.append(f"{description} (fails: {type(error).__name__})")
                continue
            if logits.shape == expected.shape and float((logits - expected).abs().max()) <= tolerance:
                return ModelSpec(blocks=spec.blocks, final_norm=names, unembedding=base.unembedding_name,
                                 down_proj=spec.down_proj, embedding=spec.embedding, decode=decode)
            tried.append(description)
    raise UnsupportedModelError(
        f"Could not find the masked-LM head of {type(model).__name__}: none of {tried} reproduces the model's "
        "logits from the last block's output. Pass ew.ModelSpec(decode=callable) mapping hidden states to logits."
    )


# ----- the model wrapper -----
class MaskedLanguageModel(LanguageModel):
    """A masked LM (or a head-less encoder) + tokenizer. Build it with :func:`masked_lm`.

    ``analyze(text, mask_positions=[...])`` returns a :class:`MaskedLMOutput`: per-layer ranks of the actual token at
    every position through the MLM head, and activations / attention when asked.
    """

    def __init__(self, model: nn.Module, tokenizer=None, spec: ModelSpec | None = None, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        head = find_mlm_head(model, spec)
        self.spec = discover_spec(model, head or spec, require_head=False)
        self.name = name or type(model).__name__

    def __repr__(self) -> str:
        head = "MLM head" if self.has_head else "no MLM head"
        return f"MaskedLanguageModel({self.name!r}, layers={self.spec.n_layers}, {head})"

    @property
    def has_head(self) -> bool:
        return self.spec.has_head

    @property
    def mask_token_id(self) -> int | None:
        return getattr(self.tokenizer, "mask_token_id", None) if self.tokenizer is not None else None

    def generate(self, *args, **kwargs):
        raise UnsupportedModelError(
            f"generate() is for causal LMs; {self.name} is a masked LM that fills in masked positions. Use "
            "mlm.analyze(text, mask_positions=[...]) to see how each layer ranks the hidden tokens."
        )

    def analyze(self, text: str, mask_positions: Sequence[int] | None = None, **options: Any) -> MaskedLMOutput:
        """Analyse ``text`` (tokenised with the special tokens, e.g. [CLS] ... [SEP]).

        mask_positions: token positions to replace by the mask token before the forward pass (after tokenisation;
        see ``mlm.encode(text)``). Other options as in :meth:`analyze_ids`.
        Example: ``out = mlm.analyze("The capital of France is Paris.", mask_positions=[6], activations=True)``
        """
        ids = self.encode(text)
        self._check_length(len(ids), "The text")
        return self.analyze_ids(ids, mask_positions=mask_positions, **options)

    def analyze_ids(
        self,
        token_ids: Sequence[int],
        mask_positions: Sequence[int] | None = None,
        mask_token_id: int | None = None,
        activations: bool | Sequence[int] = False,
        activation_dtype: str = "float32",
        attention: bool = False,
        lens_topk: int = 10,
        keep_hidden_states: bool = True,
        attribution: Sequence[str] = (),
        target: str = "prob",
        n_steps: int | None = None,
        progress: bool | None = None,
        **unsupported: Any,
    ) -> MaskedLMOutput:
        """Analyse a token sequence (the true tokens; masked positions are replaced before the forward pass).

        attribution: methods ("ig", "grad_x_input", "saliency", "occlusion") explaining, at each masked position p,
        f = the probability (target="prob"; or "logit", "logprob") of the true token at p, read at p from the MLM
        head on the input the model saw (every mask position masked). Every position, before and after p and p
        itself (its [MASK] embedding), gets attribution. n_steps: integration points for "ig".
        """
        unknown = sorted(k for k in unsupported if k not in ("n_input_tokens", "targets"))
        if unknown:
            raise InputError(f"Unknown option(s) for a masked LM: {unknown}.")
        ids = [int(i) for i in token_ids]
        if not ids:
            raise InputError("There are no tokens to analyse; give a non-empty text.")
        n = len(ids)
        masked = self._mask_positions(mask_positions, n)
        methods = self._attribution_request(attribution, masked, target, n_steps)
        seen = list(ids)
        if len(masked):
            mask_id = self._mask_id(mask_token_id)
            for p in masked:
                seen[p] = mask_id
        layers = self._activation_layers(activations)
        if layers:
            check_activation_memory(self.spec, layers, n, np.dtype(activation_dtype))

        device = _device(self.model)
        input_ids = torch.tensor([seen], device=device)
        with self._attention_mode(attention):
            captured = capture(self.spec, input_ids, activation_layers=layers, activation_dtype=activation_dtype,
                               attention=attention)
        lens = None
        if self.has_head:  # the true token at each position, read at that same position
            lens = logit_lens(self.spec.decode, captured.hidden[1:], torch.tensor(ids, device=captured.hidden.device),
                              k=lens_topk, final_logits=captured.logits)
        out = self._output(ids, n, captured, layers, lens, n, keep_hidden_states)
        if methods:
            self._attribute(out, input_ids, ids, masked, methods, target, n_steps, progress)
        return _as_masked(out, np.asarray(masked, dtype=np.int64), np.asarray(seen, dtype=np.int64), self.has_head)

    def _attribution_request(self, attribution, masked: list[int], target: str, n_steps) -> list[str]:
        """The checked attribution methods ([] when none are asked for)."""
        if not attribution:
            return []
        from .analysis.encoder_attribution import TARGETS, check_methods, check_n_steps

        methods = check_methods(attribution)
        if not self.has_head:
            raise NotAvailableError(f"Attribution explains the MLM head's prediction, but {self.name} has no "
                                    "masked-LM head. Load the model with its head (AutoModelForMaskedLM).")
        if not masked:
            raise InputError("Attribution for a masked LM explains the prediction at masked positions: pass "
                             "mask_positions=[p, ...] (token positions, see mlm.encode(text)).")
        if target not in TARGETS:
            raise InputError(f"Unknown attribution target {target!r}; choose from {', '.join(TARGETS)}.")
        check_n_steps(n_steps)
        return methods

    def _attribute(self, out: Output, input_ids: torch.Tensor, true_ids: list[int], masked: list[int],
                   methods: list[str], target: str, n_steps, progress) -> None:
        """Bidirectional attributions of f(true token at p | input with the mask positions masked), p in masked."""
        from .adapter import block_output
        from .analysis.encoder_attribution import compute_encoder_attributions, scalar_of_logits

        positions = torch.tensor(masked, dtype=torch.long, device=input_ids.device)
        explained = torch.tensor([true_ids[p] for p in masked], dtype=torch.long, device=input_ids.device)
        last_block, decode, model = self.spec.blocks[-1], self.spec.decode, self.model

        def forward(x: torch.Tensor) -> torch.Tensor:
            """The last block's output for embeddings x (nothing after it runs), decoded at the masked rows."""
            store: dict[str, torch.Tensor] = {}

            def hook(module, args, output):
                store["h"] = block_output(output)
                raise _StopForward

            handle = last_block.register_forward_hook(hook)
            try:
                model(inputs_embeds=x)
            except _StopForward:
                pass
            finally:
                handle.remove()
            if "h" not in store:
                raise UnsupportedModelError("The last block did not run during the forward pass; the ModelSpec may "
                                            "be wrong (pass ew.ModelSpec(blocks='path.to.layers')).")
            return decode(store["h"][:, positions])  # (b, T, vocab)

        result = compute_encoder_attributions(
            model, self.spec.embedding, input_ids, lambda logits: scalar_of_logits(logits, explained, target),
            methods, forward=forward, n_steps=n_steps, progress=progress,
            settings={"target": target, "explained": "the true token at each masked position, read there by the "
                      "MLM head, with every mask position masked"})
        out.targets = np.asarray(masked, dtype=np.int64)
        out.attributions_raw = result.raw
        out.convergence_deltas = result.deltas
        out.attribution_settings = result.settings

    def single_token_id(self, token: str | int) -> int:
        if isinstance(token, (int, np.integer)):
            vocab = getattr(self.model.config, "vocab_size", None)
            if vocab is not None and not 0 <= int(token) < vocab:
                raise InputError(f"Token id {token} is outside the vocabulary (0..{vocab - 1}).")
            return int(token)
        return super().single_token_id(token)

    def _mask_positions(self, positions: Sequence[int] | None, n: int) -> list[int]:
        if positions is None:
            return []
        if isinstance(positions, (int, np.integer)):
            positions = [positions]
        chosen = []
        for p in positions:
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not -n <= p < n:
                raise InputError(f"mask position {p!r} is out of range: the text has {n} tokens (0..{n - 1}, "
                                 "counting special tokens such as [CLS]).")
            chosen.append(int(p) % n)
        if len(set(chosen)) != len(chosen):
            raise InputError(f"mask_positions {list(positions)} name a position twice.")
        return sorted(chosen)

    def _mask_id(self, mask_token_id: int | None) -> int:
        mask_id = mask_token_id if mask_token_id is not None else self.mask_token_id
        if mask_id is None:
            raise InputError("No mask token is known: load the model with its tokenizer (tokenizer.mask_token_id) "
                             "or pass mask_token_id=... to analyze_ids.")
        return int(mask_id)


def _load_by_name(name: str, tokenizer, dtype, attn_implementation, load_kwargs):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    is_folder = Path(name).expanduser().is_dir()
    source = str(Path(name).expanduser()) if is_folder else name
    kwargs = dict(load_kwargs)
    kwargs.setdefault("dtype", dtype or torch.float32)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(source, output_loading_info=True, **kwargs)
        if info.get("missing_keys"):
            # the checkpoint has no MLM head: transformers would have initialised one at random
            model = AutoModel.from_pretrained(source, **kwargs)
    except OSError as error:
        where = "local folder" if is_folder else "hub id"
        raise ModelLoadError(
            f"Could not load the model {name!r} ({where}): {error}. If the Hugging Face Hub is unreachable, save the "
            "model and tokenizer to a folder where it is reachable and pass the folder."
        ) from None
    except ValueError as error:
        if "Unrecognized configuration class" in str(error):
            model = AutoModel.from_pretrained(source, **kwargs)
        else:
            raise
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(source)
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    return model, tokenizer


def masked_lm(model, tokenizer=None, spec: ModelSpec | None = None, dtype: torch.dtype | str | None = None,
              device: str | torch.device = "cpu", attn_implementation: str | None = None,
              **load_kwargs) -> MaskedLanguageModel:
    """A MaskedLanguageModel from a local folder / hub id or a transformers model object (+ its tokenizer).

    A checkpoint without an MLM head (e.g. a sentence-transformers BertModel) is loaded as a plain encoder (never
    with a randomly initialised head): activations, NMF, hidden states and attention work, ranks do not.
    Example: ``mlm = ew.masked_lm("/models/bert-base-uncased"); out = mlm.analyze(text, mask_positions=[4])``.
    """
    if isinstance(model, (str, Path)):
        name = str(model)
        model, tokenizer = _load_by_name(name, tokenizer, dtype, attn_implementation, load_kwargs)
    else:
        if not isinstance(model, nn.Module):
            raise UnsupportedModelError(f"masked_lm got a {type(model).__name__}; pass a local folder, a hub id, or a "
                                        "transformers model object (e.g. AutoModelForMaskedLM.from_pretrained(...)).")
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    if type(model).__name__.endswith(("ForCausalLM", "LMHeadModel")):
        raise UnsupportedModelError(f"{type(model).__name__} is a causal LM; use ew.from_pretrained(...) for it.")
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        raise UnsupportedModelError(f"{type(model).__name__} is an encoder-decoder model, which masked_lm does not "
                                    "support yet.")
    model = model.to(device).eval()
    return MaskedLanguageModel(model, tokenizer, spec=spec, name=name)
