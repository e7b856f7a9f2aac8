"""What every model kind shares: the one loader, the tokenizer, device and dtype, input checks, token text.

Each kind (:mod:`.causal_lm`, :mod:`.masked_lm`, :mod:`.seq2seq`, :mod:`.classifier`) is a subclass of
:class:`ModelBase` and adds only what differs: how its inputs are formed, what it reads out, which result it
returns.

>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> base = ModelBase(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=64)))
>>> base.context_window, str(base.device), base.activation_layers([0, -1], n_layers=4)
(64, 'cpu', [0, 3])
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..adapter import model_device
from ..analysis.components.attention import eager_attention
from ..capture import Captured, module_lock
from ..memory import capture_needs, check_capture_memory
from ..errors import InputError, ModelLoadError, UnsupportedModelError
from ..results import Output
from ..tokens import display_tokens

_WINDOW_KEYS = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model",
                    "sentencepiece.bpe.model", "source.spm")


# ----- the one loader -----
def resolve_source(name: str | Path) -> tuple[str, bool]:
    """(what transformers should load, whether it is a local folder) for a hub id or a folder path.

    A name that can only be a path (a Path, or a str starting with / ./ ../ ~ or with more than one /) and names no
    folder is a ModelLoadError here: it is not sent to the hub as an id.
    """
    folder = Path(name).expanduser()
    if folder.is_dir():
        return str(folder), True
    text = str(name)
    if isinstance(name, Path) or text.startswith(("/", "./", "../", "~")) or text.count("/") > 1:
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ModelLoadError(f"No model folder at {text}: it {what}. Give the folder that save_pretrained wrote "
                             "(config.json and the weights), or a hub id such as 'gpt2'.")
    return text, False


def _cannot_load(name: str, is_folder: bool, error: Exception) -> ModelLoadError:
    where = "local folder" if is_folder else "hub id"
    return ModelLoadError(
        f"Could not load the model {name!r} ({where}): {error}. If the Hugging Face Hub is unreachable, download "
        "the model where it is reachable (model.save_pretrained(folder); tokenizer.save_pretrained(folder)) and pass "
        "the folder: ew.from_pretrained('/path/to/folder'); or use ew.demo_model() for the bundled model."
    )


def load_config(name: str | Path, **kwargs: Any):
    """The transformers config of a hub id or folder, or a ModelLoadError that says what to do."""
    from transformers import AutoConfig

    source, is_folder = resolve_source(name)
    try:
        return AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        raise _cannot_load(str(name), is_folder, error) from None


def load_model(name: str | Path, auto_class: Any, dtype: torch.dtype | str | None = None,
               attn_implementation: str | None = None, output_loading_info: bool = False, **load_kwargs: Any):
    """``auto_class.from_pretrained`` of a hub id or folder (float32 unless ``dtype``); OSError -> ModelLoadError.

    Returns the model, or (model, loading info) with ``output_loading_info``. Other keyword arguments
    (``device_map``, ``gguf_file``, ...) go to transformers unchanged.
    """
    source, is_folder = resolve_source(name)
    kwargs = dict(load_kwargs)
    kwargs.setdefault("dtype", dtype or torch.float32)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        return auto_class.from_pretrained(source, output_loading_info=output_loading_info, **kwargs)
    except OSError as error:
        raise _cannot_load(str(name), is_folder, error) from None


def load_tokenizer(source: Any, fallback_source: str | None = None, optional: bool = False, **kwargs: Any):
    """A tokenizer: ``source`` itself when it is one, else AutoTokenizer of a path / id (``fallback_source`` when
    ``source`` is None). optional: a folder without tokenizer files gives None instead of an empty tokenizer."""
    from transformers import AutoTokenizer

    if source is not None and not isinstance(source, (str, Path)):
        return source
    where = str(source) if source is not None else fallback_source
    if where is None:
        return None
    if optional:
        folder = Path(where)
        if folder.is_dir() and not any((folder / f).exists() for f in _TOKENIZER_FILES):
            return None
        try:
            return AutoTokenizer.from_pretrained(where, **kwargs)
        except (OSError, ValueError, TypeError):
            return None  # text methods say so; the *_ids methods work without one
    return AutoTokenizer.from_pretrained(where, **kwargs)


def name_of(model: nn.Module) -> str:
    """The hub id or folder a model object was loaded from, else its class name."""
    return getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__


def prepare(model: nn.Module, device: str | torch.device | None) -> nn.Module:
    """Eval mode, on ``device``; a model that accelerate dispatched over devices (``hf_device_map``) stays put."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"Expected a transformers model object, got a {type(model).__name__}; pass a hub "
                                    "id, a local folder, or e.g. AutoModelForCausalLM.from_pretrained(...).")
    if device is not None and getattr(model, "hf_device_map", None) is None:
        model = model.to(device)
    if model.training:
        import warnings

        warnings.warn("ecco_widgets put the model in eval mode (dropout off), so that analyses are deterministic; "
                      "call model.train() before training it again.", UserWarning, stacklevel=3)
    return model.eval()


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float32 numpy array owned by the result, from a tensor of any float dtype on any device."""
    return tensor.detach().to("cpu", torch.float32).numpy().copy()


def execution_device(model: nn.Module) -> torch.device:
    """Where inputs go: the device of the first module of an accelerate-dispatched model (its disk-offloaded
    layers run on the main device), else the device of the model's parameters."""
    placement = getattr(model, "hf_device_map", None)
    if placement:
        for where in placement.values():
            if where not in ("disk", "meta"):
                return torch.device(f"cuda:{where}" if isinstance(where, int) else where)
        return torch.device("cpu")
    return model_device(model)


_ACTIVATION_DTYPES = ("float32", "float16")


# ----- the base of every kind -----
class ModelBase:
    """A transformers model + tokenizer. Subclasses add ``analyze`` / ``analyze_ids`` for their kind.

    Calls are serialised by ``self.lock``, the lock of the model module itself (capture hooks live on the shared
    modules, and act only on the forwards of the thread that installed them: ``capture.this_thread_only``).
    """

    #: What the text given to ``analyze`` is called in messages ("prompt" for a causal LM).
    text_name = "text"

    def __init__(self, model: nn.Module, tokenizer: Any = None, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or name_of(model)
        self.lock = module_lock(model)  # the module's, shared by every wrapper over it

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def device(self) -> torch.device:
        """Where this model's inputs go (the first device of a model dispatched over several)."""
        return execution_device(self.model)

    @property
    def dtype(self) -> torch.dtype:
        return next((p.dtype for p in self.model.parameters()), torch.float32)

    @property
    def context_window(self) -> int | None:
        """Most tokens the model takes, where its config says so."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        for key in _WINDOW_KEYS:
            value = getattr(text, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @property
    def vocab_size(self) -> int | None:
        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        weight = getattr(head, "weight", None)
        if isinstance(weight, torch.Tensor):
            return int(weight.shape[0])
        value = getattr(getattr(self.model, "config", None), "vocab_size", None)
        return int(value) if isinstance(value, int) else None

    # ----- tokens -----
    def _require_tokenizer(self):
        if self.tokenizer is None:
            raise InputError("This model has no tokenizer: pass tokenizer=... when loading it, or use the *_ids "
                             "methods with token ids.")
        return self.tokenizer

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model sees it (with the tokenizer's special tokens, e.g. BOS or [CLS])."""
        if not isinstance(text, str):
            hint = {bytes: " (decode it first: text.decode('utf-8'))", list: " (for several, use ew.batch(lm, texts, "
                    "out), or one call per text)", tuple: " (for several, use ew.batch(lm, texts, out))"}
            raise InputError(f"The {self.text_name} must be a string, got {type(text).__name__}"
                             f"{hint.get(type(text), '')}.")
        if not text.strip():
            raise InputError(f"The {self.text_name} is empty: give some text, e.g. "
                             "lm.analyze('The keys to the cabinet are').")
        return [int(i) for i in self._require_tokenizer()(text)["input_ids"]]

    def single_token_id(self, token: str | int) -> int:
        """The id of a string that is exactly one token (e.g. " is"), or an id checked against the vocabulary."""
        if isinstance(token, (int, np.integer)) and not isinstance(token, bool):
            vocab = self.vocab_size
            if vocab is not None and not 0 <= int(token) < vocab:
                raise InputError(f"Token id {token} is outside the vocabulary (0..{vocab - 1}).")
            return int(token)
        ids = self._require_tokenizer().encode(token, add_special_tokens=False)
        if len(ids) != 1:
            pieces = self.tokenizer.convert_ids_to_tokens(ids)
            raise InputError(
                f"{token!r} is not one token: it splits into {pieces}. Watch a single token (try it with or without "
                "a leading space, e.g. ' is') or pass a token id."
            )
        return int(ids[0])

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint (models/fingerprint.py), computed once per wrapper."""
        if getattr(self, "_fingerprint", None) is None:
            from .fingerprint import model_fingerprint

            self._fingerprint = model_fingerprint(self.model)
        return self._fingerprint

    def display(self, ids: Sequence[int]) -> tuple[list[str], list[str]]:
        """(display text, raw pieces) of token ids; the ids themselves as text without a tokenizer."""
        if self.tokenizer is None:
            return [str(int(i)) for i in ids], [str(int(i)) for i in ids]
        return display_tokens(self.tokenizer, [int(i) for i in ids])

    def vocab_text(self, ids: np.ndarray) -> dict[int, str]:
        shown, _ = self.display([int(i) for i in ids])
        return {int(i): s for i, s in zip(ids, shown)}

    def output_of(self, ids: list[int], n_input: int, captured: Captured, layers: list[int], decoded, n_ranked: int,
                  keep_hidden_states: bool, output_class: type = Output, **fields: Any) -> Any:
        """An output from one capture: token text, lens arrays (ranks of the first ``n_ranked`` positions;
        ``decoded=None`` for a model without a head), activations and attention, all copies owned by the output."""
        tokens, raw = self.display(ids)
        if decoded is None:
            lens_fields: dict[str, Any] = {"ranks": np.zeros((len(captured.hidden) - 1, 0), np.int32)}
        else:
            lens_fields = {
                "ranks": decoded.ranks[:, :n_ranked].copy(), "topk_ids": decoded.topk_ids,
                "topk_probs": decoded.topk_probs, "target_probs": decoded.target_probs[:, :n_ranked].copy(),
                "entropy": decoded.entropy[:, :n_ranked].copy(),
                "kl_to_final": decoded.kl_to_final[:, :n_ranked].copy(),
                "vocab_text": self.vocab_text(np.unique(decoded.topk_ids)),
            }
        out = output_class(
            token_ids=np.asarray(ids, dtype=np.int64), tokens=tokens, raw_tokens=raw, n_input_tokens=n_input,
            hidden_states=to_numpy(captured.hidden) if keep_hidden_states else None,
            model_name=self.name, model_fingerprint=self.fingerprint, **lens_fields, **fields,
        )
        if layers:
            out.activations = np.stack([captured.activations[layer] for layer in layers])
            out.activation_layers = list(layers)
        if captured.attentions is not None:
            out.attention_weights = to_numpy(captured.attentions)
        if decoded is not None and getattr(out, "lens", "logit") == "logit":
            out.attach(self)  # a tuned-lens output is attached with its lens by the caller
        return out

    def foil_ids(self, contrast: Any, token_ids: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
        """Per target, the foil token id for contrastive attribution (-1 where none)."""
        if contrast is None:
            return None
        foils = np.full(len(positions), -1, dtype=np.int64)
        if isinstance(contrast, dict):
            mapping = {self.single_token_id(k): self.single_token_id(v) for k, v in contrast.items()}
            for i, p in enumerate(positions):
                foils[i] = mapping.get(int(token_ids[p]), -1)
            if (foils < 0).all():
                raise InputError(f"None of the explained tokens is a key of contrast={contrast!r}; the keys must be "
                                 "tokens that occur at the target positions.")
        else:
            foils[:] = self.single_token_id(contrast)
        return foils

    # ----- checks -----
    def check_length(self, n_tokens: int, what: str) -> None:
        window = self.context_window
        if window is not None and n_tokens > window:
            raise InputError(f"{what} is {n_tokens} tokens, past the model's context window of {window}. "
                             "Shorten the text (or generate fewer tokens).")

    def check_ids(self, token_ids: Sequence[int], what: str = "The text") -> list[int]:
        """Token ids as ints, non-empty, inside the vocabulary and the context window; InputError otherwise."""
        if isinstance(token_ids, (str, bytes)):
            raise InputError(f"{what}: token ids must be a list of integers, got a {type(token_ids).__name__}; for "
                             "text use lm.analyze(text).")
        wrong = [i for i in token_ids if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer))]
        if wrong:
            raise InputError(f"{what}: token ids must be integers, got {wrong[:5]!r} (a float or a string would be "
                             "truncated or parsed into another token).")
        ids = [int(i) for i in token_ids]
        if not ids:
            raise InputError(f"{what} has no tokens; give a non-empty text.")
        vocab = self.vocab_size
        bad = [i for i in ids if i < 0 or (vocab is not None and i >= vocab)]
        if bad:
            raise InputError(f"{what} has token ids {bad[:5]} outside the vocabulary (0..{(vocab or 1) - 1}).")
        self.check_length(len(ids), what)
        return ids

    @staticmethod
    def check_options(lens_topk: Any = 10, activation_dtype: Any = "float32", vocab: int | None = None) -> None:
        """InputError, before any work, for a lens_topk that is not 1..vocab or an activation dtype other than
        float32 / float16."""
        if isinstance(lens_topk, (bool, np.bool_)) or not isinstance(lens_topk, (int, np.integer)) or lens_topk < 1 \
                or (vocab is not None and lens_topk > vocab):
            raise InputError(f"lens_topk must be an integer from 1 to the vocabulary size ({vocab}), got "
                             f"{lens_topk!r}: how many of each layer's top predictions to keep.")
        if str(np.dtype(activation_dtype) if isinstance(activation_dtype, np.dtype) else activation_dtype) \
                not in _ACTIVATION_DTYPES:
            raise InputError(f"activation_dtype must be one of {', '.join(_ACTIVATION_DTYPES)}, got "
                             f"{activation_dtype!r} (an integer type would wrap the activations).")

    def check_memory(self, n_layers: int, n_tokens: int, d_model: int, attention: bool) -> None:
        """Refuse, before the forward pass, a capture whose hidden states, logits, lens or attention won't fit."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = next((v for k in ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads")
                      if isinstance(v := getattr(text, k, None), int)), None)
        itemsize = torch.finfo(self.dtype).bits // 8 if self.dtype.is_floating_point else 4
        check_capture_memory(capture_needs(n_layers, n_tokens, d_model, self.vocab_size, itemsize, heads, attention),
                             self.device)

    @staticmethod
    def activation_layers(activations: Any, n_layers: int, stack: str = "model") -> list[int]:
        """Layers whose MLP activations to keep: [] for False/None, all for True, else the listed ones (numeric
        order, negatives from the end, repeats dropped)."""
        if activations is False or activations is None:
            return []
        if activations is True:
            return list(range(n_layers))
        if isinstance(activations, (int, np.integer)):
            activations = [activations]
        chosen = []
        for layer in activations:
            if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)) \
                    or not -n_layers <= layer < n_layers:
                raise InputError(f"Layer {layer!r} does not exist in the {stack}: it has {n_layers} layers "
                                 f"(0..{n_layers - 1}). Pass activations=True or a list of layer indices.")
            chosen.append(int(layer) % n_layers)
        return sorted(set(chosen))

    def attention_mode(self, attention: bool) -> AbstractContextManager:
        """Switch to eager attention only while attention weights are asked for (sdpa returns none)."""
        return eager_attention(self.model) if attention else nullcontext()
