"""One hooked forward pass over one stack (causal LMs, encoders) or two (encoder-decoders).

Records, per stack: the input of block 0 and every block's output (the residual stream before the final norm), the
MLP activations of chosen layers (the input of each block's down projection), and the attention weights when asked.
Hooks live for the duration of one call and are always removed, also when the forward raises.
:func:`forward_until` runs a model only up to one block (what the attribution engine needs).

A stack is anything with ``blocks`` (a list of modules), ``n_layers`` and ``down_proj(layer)`` (an adapter
``ResolvedSpec``); this module imports no other stage of the pipeline.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> import torch
>>> from ecco_widgets.adapter import discover_spec
>>> model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100)).eval()
>>> cap = capture(discover_spec(model), torch.tensor([[1, 2, 3]]), activation_layers=[1])
>>> tuple(cap.hidden.shape), tuple(cap.activations[1].shape), tuple(cap.logits.shape)
((3, 3, 32), (3, 128), (3, 100))
"""

from __future__ import annotations

import functools
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, NoReturn

import numpy as np
import torch
from torch import nn

from .errors import InputError, NonFiniteError, UnsupportedModelError
from .progress import progress_bar


@dataclass
class Captured:
    """What one forward pass recorded, for a single sequence.

    hidden: (n_layers + 1, n_tokens, d_model) in the model's dtype, on the device of its last block: row 0 is the
    input of block 0 (the embeddings), row l+1 the output of block l, all *before* the final norm. logits:
    (n_tokens, vocab), the model's own, in its dtype (None for an encoder without a head).
    activations: {layer: array (n_tokens, n_neurons)} (numpy, in the storage dtype), numeric layer order.
    attentions: float (n_layers, n_heads, n_tokens, n_tokens) or None.
    """

    hidden: torch.Tensor
    logits: torch.Tensor | None
    activations: dict[int, np.ndarray] = field(default_factory=dict)
    attentions: torch.Tensor | None = None


@dataclass
class Seq2SeqCaptured:
    """One forward over (source, decoder tokens): each stack's hidden (n_layers + 1, n, d) and activations
    {layer: (n, n_neurons)}; logits (n_decoder_tokens, vocab); attentions (n_layers, heads, queries, keys)."""

    encoder_hidden: torch.Tensor
    decoder_hidden: torch.Tensor
    logits: torch.Tensor
    encoder_activations: dict[int, np.ndarray] = field(default_factory=dict)
    decoder_activations: dict[int, np.ndarray] = field(default_factory=dict)
    encoder_attentions: torch.Tensor | None = None
    decoder_attentions: torch.Tensor | None = None
    cross_attentions: torch.Tensor | None = None


def block_output(output: Any) -> torch.Tensor:
    """The hidden-state tensor of a block's forward output (a tensor, or a tuple whose first item it is)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    hidden = getattr(output, "hidden_states", None) or getattr(output, "last_hidden_state", None)
    if isinstance(hidden, torch.Tensor):
        return hidden
    raise UnsupportedModelError(f"Cannot read a hidden state from a block output of type {type(output).__name__}.")


def this_thread_only(hook: Any) -> Any:
    """``hook``, acting only on forwards run by the thread that installs it: the hooks live on modules that other
    code may run at the same time (a plain ``model(x)`` in another thread, an analysis through another wrapper), and
    those forwards must run as if the hooks were not there, and never be read into this one."""
    owner = threading.get_ident()

    @functools.wraps(hook)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        return hook(*args, **kwargs) if threading.get_ident() == owner else None

    return guarded


_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def module_lock(model: nn.Module) -> threading.RLock:
    """The one lock of ``model``, shared by every wrapper over it (two ``ew.from_pretrained(model)`` of one model,
    as a re-run notebook cell makes): analyses of one module run one at a time, whichever wrapper calls them."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def removed_on_exit(handles: list) -> Iterator[None]:
    """Removes every hook handle in ``handles`` on exit (also when the body raises)."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        handles.clear()


class _StackRecorder:
    """Hooks on one stack that keep its residual stream and the chosen layers' MLP activations."""

    def __init__(self, stack: Any, layers: list[int], dtype: np.dtype, name: str = "", bar: Any = None,
                 sublayers: bool = False):
        self.stack = stack
        self.sublayers = sublayers
        self.branches: list[torch.Tensor | None] = [None] * stack.n_layers
        self.bar = bar
        self.name = name
        self.layers = sorted(layers)
        self.dtype = np.dtype(dtype)
        self.first: torch.Tensor | None = None
        self.outputs: list[torch.Tensor | None] = [None] * stack.n_layers
        self.activations: dict[int, np.ndarray] = {}

    def register(self, handles: list) -> None:
        def first_input(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states")
            self.first = hidden.detach()[0]

        def keep_output(layer):
            def hook(module, args, output):
                self.outputs[layer] = block_output(output).detach()[0]
                if self.bar is not None:
                    self.bar.update(1)
            return hook

        def keep_activation(layer):
            def hook(module, args):
                self.activations[layer] = args[0].detach()[0].float().cpu().numpy().astype(self.dtype, copy=True)
            return hook

        def keep_branch(layer):
            def hook(module, args, output):
                # a copy: Falcon adds the attention output to this tensor in place after the hook
                self.branches[layer] = block_output(output).detach().clone()  # (1, n, d), or OPT's (n, d)
            return hook

        handles.append(self.stack.blocks[0].register_forward_pre_hook(this_thread_only(first_input), with_kwargs=True))
        if self.sublayers:
            for layer in range(self.stack.n_layers):
                branch = self.stack.mlp_branch(layer)
                if branch is None:
                    raise InputError(f"No MLP was found in block {layer}, so the residual stream after its attention "
                                     "cannot be told apart; pass ew.ModelSpec(down_proj=[...]) naming each block's "
                                     "MLP output projection, or use lens_points='blocks'.")
                handles.append(branch.register_forward_hook(this_thread_only(keep_branch(layer))))
        for layer, block in enumerate(self.stack.blocks):
            handles.append(block.register_forward_hook(this_thread_only(keep_output(layer))))
        for layer in self.layers:
            proj = self.stack.down_proj(layer)
            if proj is None:
                where = f"{self.name} block" if self.name else "block"
                raise InputError(f"No MLP was found in {where} {layer}; pass ew.ModelSpec(down_proj=[...]) to name "
                                 "the MLP output projection of each block.")
            handles.append(proj.register_forward_pre_hook(this_thread_only(keep_activation(layer))))

    def hidden(self) -> torch.Tensor:
        """(n_layers + 1, n_tokens, d_model) in the model's dtype: block 0's input, then every block's output,
        gathered on the last block's device (blocks of a dispatched model may sit on several devices)."""
        missing = [i for i, h in enumerate(self.outputs) if h is None]
        if missing or self.first is None:
            raise RuntimeError(f"{self.name or 'Model'} blocks {missing} did not run during the forward pass; the "
                               "ModelSpec may be wrong.")
        device = self.outputs[-1].device
        rows = [self.first, *self.outputs]
        check_finite(rows, self.name)
        if self.sublayers:
            rows = [self.first, *(row for layer in range(self.stack.n_layers) for row in self._sublayer_rows(layer))]
        return torch.stack([h.to(device) for h in rows])  # type: ignore[union-attr]

    def _sublayer_rows(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(after attention, after the MLP) of one block: the block's output minus what its MLP added, then the
        output itself. The subtraction runs in float32 and is stored in the model's dtype."""
        out, branch = self.outputs[layer], self.branches[layer]
        if branch is not None and branch.numel() == out.numel():
            branch = branch.reshape(out.shape)
        else:
            raise RuntimeError(f"The MLP of block {layer} did not add a residual-stream-shaped output during the "
                               "forward pass; use lens_points='blocks' for this model.")
        mid = (out.float() - branch.to(out.device).float()).to(out.dtype)
        return mid, out


def check_finite(rows: list[torch.Tensor], stack: str = "") -> None:
    """NonFiniteError naming the first of the residual-stream rows (embeddings, then each block's output) that holds
    NaN or infinite values."""
    n_blocks = len(rows) - 1
    for index, row in enumerate(rows):
        if bool(torch.isfinite(row).all()):
            continue
        where = "the input embeddings" if index == 0 else f"the output of block {index - 1} (of {n_blocks})"
        stack_name = f"{stack} " if stack else ""
        kind = "NaN" if bool(torch.isnan(row).any()) else "infinite"
        if row.dtype == torch.float16 and kind == "infinite":
            advice = ("float16 overflowed (its largest value is 65504): load the model in bfloat16 or float32 "
                      "(ew.from_pretrained(..., dtype=torch.bfloat16)).")
        else:
            advice = ("Check the model's weights (a NaN weight, or a checkpoint that did not load); in float16, "
                      "load the model in bfloat16 or float32 instead.")
        raise NonFiniteError(f"The {stack_name}residual stream first holds {kind} values in {where}. {advice}")


def _all_finite(tensor: torch.Tensor, rows: int = 512) -> bool:
    """torch.isfinite(tensor).all() over blocks of positions: on the logits of a long text (8,000 tokens x 49k
    vocabulary) the one-shot check's temporaries took 2.6 GB, 1.7x the logits themselves."""
    flat = tensor.reshape(-1, tensor.shape[-1])
    return all(bool(torch.isfinite(flat[i:i + rows]).all()) for i in range(0, flat.shape[0], rows))


def _stacked_attention(values: Any) -> torch.Tensor:
    """float32 (n_layers, n_heads, queries, keys) on the CPU, one layer converted at a time."""
    if not values or values[0] is None:
        raise RuntimeError("The model returned no attention weights; load it with attn_implementation='eager'.")
    first = values[0][0]
    out = torch.empty((len(values), *first.shape), dtype=torch.float32)
    for layer, weights in enumerate(values):
        out[layer] = weights[0].to("cpu", torch.float32)
    return out


def capture(spec: Any, input_ids: torch.Tensor, activation_layers: list[int] | None = None,
            activation_dtype: str | np.dtype = np.float32, attention: bool = False,
            progress: bool | None = False, sublayers: bool = False, plugs: tuple = ()) -> Captured:
    """Run the model once on ``input_ids`` (shape (1, n_tokens)) and record what the analyses need.

    sublayers: hidden holds 2 rows per block, (n_layers * 2 + 1, n_tokens, d_model): after block l's attention
    (its output minus what its MLP added: for parallel-attention blocks such as GPT-J, NeoX and Falcon, the block
    input plus the attention output, which the MLP never reads) and after its MLP (the block's output).

    plugs: more recorders of the same forward, each with ``register(handles)`` (its hooks join ``handles``, removed
    with the rest), e.g. :class:`ecco_widgets.analysis.components.ComponentRecorder`.

    Raises NonFiniteError naming the first block whose output holds NaN or infinite values.
    """
    handles: list = []
    with progress_bar(spec.n_layers, "forward", progress, "block") as bar, removed_on_exit(handles), torch.inference_mode():
        recorder = _StackRecorder(spec, activation_layers or [], np.dtype(activation_dtype), bar=bar,
                                  sublayers=sublayers)
        for recorder_of_plug in (recorder, *plugs):
            recorder_of_plug.register(handles)
        kwargs = {"use_cache": False, **({"output_attentions": True} if attention else {})}
        output = spec.model(input_ids=input_ids, **kwargs)
    logits = getattr(output, "logits", None)
    hidden = recorder.hidden()
    if logits is not None and not _all_finite(logits):
        raise NonFiniteError(f"The model's logits hold NaN or infinite values although every block's output is "
                             f"finite: the final norm or the unembedding overflowed ({logits.dtype}). Load the model "
                             "in bfloat16 or float32.")
    return Captured(hidden=hidden, logits=None if logits is None else logits[0],
                    activations=dict(sorted(recorder.activations.items())),
                    attentions=_stacked_attention(output.attentions) if attention else None)


def capture_seq2seq(spec: Any, source_ids: torch.Tensor, decoder_ids: torch.Tensor,
                    encoder_layers: list[int] | None = None, decoder_layers: list[int] | None = None,
                    activation_dtype: str | np.dtype = np.float32, attention: bool = False) -> Seq2SeqCaptured:
    """One forward over source_ids (1, n_src) and decoder_ids (1, m), recording both stacks of ``spec``
    (an adapter ``Seq2SeqSpec``)."""
    dtype = np.dtype(activation_dtype)
    encoder = _StackRecorder(spec.encoder, encoder_layers or [], dtype, "encoder")
    decoder = _StackRecorder(spec.decoder, decoder_layers or [], dtype, "decoder")
    handles: list = []
    with removed_on_exit(handles), torch.inference_mode():
        encoder.register(handles)
        decoder.register(handles)
        kwargs = {"use_cache": False, **({"output_attentions": True} if attention else {})}
        output = spec.model(input_ids=source_ids, decoder_input_ids=decoder_ids, **kwargs)

    def stacked(name: str) -> torch.Tensor | None:
        return _stacked_attention(getattr(output, name, None)) if attention else None

    return Seq2SeqCaptured(
        encoder_hidden=encoder.hidden(), decoder_hidden=decoder.hidden(), logits=output.logits[0],
        encoder_activations=dict(sorted(encoder.activations.items())),
        decoder_activations=dict(sorted(decoder.activations.items())),
        encoder_attentions=stacked("encoder_attentions"), decoder_attentions=stacked("decoder_attentions"),
        cross_attentions=stacked("cross_attentions"),
    )


class _StopForward(Exception):
    """Raised by :func:`stop_forward`: nothing after the hook's module is needed."""


def stop_forward() -> NoReturn:
    """Ends the forward from inside a hook (a pre-hook or a forward hook); run the forward in :func:`stoppable`."""
    raise _StopForward


@contextmanager
def stoppable() -> Iterator[None]:
    """A forward run inside may be ended by a hook's :func:`stop_forward`, which returns here (no model output).

    >>> lin = nn.Linear(2, 2)
    >>> handle = lin.register_forward_hook(lambda module, args, output: stop_forward())
    >>> with stoppable():
    ...     _ = lin(torch.ones(2))
    """
    try:
        yield
    except _StopForward:
        pass


def forward_until(block: nn.Module, model: nn.Module, **inputs: Any) -> torch.Tensor:
    """The output of ``block`` when ``model(**inputs)`` runs; the model stops right after it.

    Gradients flow (no inference mode here): the attribution engine differentiates through it.
    """
    store: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        store["h"] = block_output(output)
        stop_forward()

    handle = block.register_forward_hook(this_thread_only(hook))
    try:
        with stoppable():
            model(**inputs)
    finally:
        handle.remove()
    if "h" not in store:
        raise UnsupportedModelError("The last block did not run during the forward pass; the ModelSpec may be wrong "
                                    "(pass ew.ModelSpec(blocks='path.to.layers')).")
    return store["h"]
