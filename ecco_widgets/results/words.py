"""Words from subword pieces, and an output at word level (``out.words()``, ``out.by_word()``).

A word is a run of pieces with no whitespace between them whose characters are of one kind: letters and digits
(with an apostrophe or hyphen inside, ``don't``, ``state-of-the-art``, and ``.``/``,`` inside numbers, ``3.14``),
or punctuation. A leading space belongs to the word after it (`` keys``); newlines are words of their own. The same
rules serve every tokenizer family, because they read the display text (byte-level BPE's ``Ġ`` and SentencePiece's
``▁`` are spaces there, WordPiece's ``##`` pieces continue a word). A word never crosses the end of the prompt, a
chat turn or a special token.

At word level (:func:`by_word`) every per-position array is that of the word's **last piece** (the first position
where the model has read the whole word: lens cells, top-k, hidden states, activations, attention queries);
attention *to* a word is the sum over its pieces; attributions are the **sum over its pieces** of each piece's
aggregated value (``out.attributions`` aggregates each piece, then adds them: ``l2_normalized`` rows still sum
to 1), and a word is explained by the row of its first explained piece (normally its first piece: the prediction
of the word from the words before it).

>>> spans = word_spans(["The", " cab", "inet", "maker", "'s", " keys", ",", "\\n", "20", "24"])
>>> spans
[(0, 1), (1, 5), (5, 6), (6, 7), (7, 8), (8, 10)]
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import unicodedata
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError, NotAvailableError

UNITS = ("token", "word")
_JOINERS = "'’-"  # inside a word: don't, state-of-the-art
_NUMBER_JOINERS = ".,"  # inside a number: 3.14, 1,000
_BYTE_FALLBACK_PREFIX = "<0x"
# special tokens shown as their raw text (<|endoftext|>, <s>, </s>, [CLS], [SEP]): words of their own
_SPECIAL_LOOKING = re.compile(r"^(<\|[^|<>]*\|>|</?[a-z_]{1,8}>|\[[A-Z_]{2,8}\])$")


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def _joins(text: str, k: int) -> bool:
    """Whether the characters on both sides of offset k of ``text`` (neither whitespace) belong to one word."""
    c0, c1, c2 = text[k - 2] if k >= 2 else " ", text[k - 1], text[k]
    c3 = text[k + 1] if k + 1 < len(text) else " "
    w1, w2 = _is_word_char(c1), _is_word_char(c2)
    if w1 and w2:
        return True
    if w1 and c2 in _JOINERS:
        return _is_word_char(c3)
    if c1 in _JOINERS and w2:
        return _is_word_char(c0)
    if c1.isdigit() and c2 in _NUMBER_JOINERS:
        return c3.isdigit()
    if c1 in _NUMBER_JOINERS and c2.isdigit():
        return c0.isdigit()
    return not w1 and not w2  # punctuation runs: "...", "?!"


def word_spans(tokens: Sequence[str], breaks: Sequence[int] = ()) -> list[tuple[int, int]]:
    """(start, stop) token ranges of the words of display texts ``tokens``, contiguous, covering every token.

    breaks: token positions where a word must start (the end of the prompt, turn starts, special tokens and the
    token after each).
    """
    forced = {int(b) for b in breaks}
    text = "".join(tokens)
    starts: list[int] = []
    offset = 0
    for i, piece in enumerate(tokens):
        k = offset
        offset += len(piece)
        if i == 0 or i in forced:
            starts.append(i)
            continue
        if not piece or k == 0:
            continue  # an empty piece continues the word before it
        before, first = text[k - 1], piece[0]
        if first.isspace():
            if not (first in "\n\r" and before in "\n\r"):
                starts.append(i)  # " keys", "\n" (a run of newlines stays one word)
        elif before.isspace():
            if before in "\n\r":
                starts.append(i)  # after a newline; after a space the word goes on (the space leads it)
        elif not _joins(text, k):
            starts.append(i)
    stops = starts[1:] + [len(tokens)]
    return list(zip(starts, stops))


def _breaks(out: Any) -> list[int]:
    """Positions where a word must start in ``out``: the end of the prompt, turn starts, special tokens (from
    special_mask, and tokens shown as a raw special-looking text such as <|endoftext|> or [SEP])."""
    breaks = [out.n_input_tokens]
    raw = out.raw_tokens if len(out.raw_tokens) == out.n_tokens else out.tokens
    for i, (text, piece) in enumerate(zip(out.tokens, raw)):
        if text == piece and _SPECIAL_LOOKING.match(text):
            breaks += [i, i + 1]
    for turn in getattr(out, "turns", None) or []:
        breaks += [int(turn["start"]), int(turn["stop"])]
    mask = getattr(out, "special_mask", None)
    if mask is not None:
        special = np.flatnonzero(np.asarray(mask, dtype=bool))
        breaks += special.tolist() + (special + 1).tolist()
    return breaks


@functools.lru_cache(maxsize=1)
def _byte_table() -> dict[str, int]:
    """GPT-2's printable stand-in of every byte -> the byte (as ecco_widgets.tokens reads it)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def _piece_bytes(text: str, piece: str, table: dict[str, int]) -> bytes:
    if piece.startswith(_BYTE_FALLBACK_PREFIX) and piece.endswith(">") and len(piece) == 6:
        return bytes([int(piece[3:5], 16)])  # SentencePiece byte fallback
    if "\\x" in text and all(ch in table for ch in piece):
        return bytes(table[ch] for ch in piece)  # a byte-level BPE piece holding part of a character
    return text.encode("utf-8")


def piece_texts(shown: Sequence[str], raw: Sequence[str]) -> list[str]:
    """The display texts of the pieces, with each character that is split over several byte pieces (an emoji over
    byte-level BPE pieces, SentencePiece byte fallback ``<0xE2>``) decoded whole into the piece where it starts
    (its other pieces become "")."""
    if not any("\\x" in t or _BYTE_FALLBACK_PREFIX in t for t in shown):
        return list(shown)
    table = _byte_table()
    chunks = [_piece_bytes(t, p, table) for t, p in zip(shown, raw)]
    owner = np.repeat(np.arange(len(chunks)), [len(c) for c in chunks])
    data = b"".join(chunks)
    texts = [""] * len(chunks)
    j = 0
    while j < len(data):
        lead = data[j]
        size = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4
        try:
            char = data[j:j + size].decode("utf-8")
        except UnicodeDecodeError:
            char, size = f"\\x{lead:02x}", 1
        texts[owner[j]] += char
        j += size
    return texts


def words_of(out: Any) -> list[dict[str, Any]]:
    """``out.words()``: [{"text", "start", "stop", "pieces"}], one per word, contiguous over every token."""
    if getattr(out, "unit", "token") == "word":
        return [{"text": t, "start": w, "stop": w + 1, "pieces": list(p)} for w, (t, p) in
                enumerate(zip(out.tokens, out.pieces))]
    raw = out.raw_tokens if len(out.raw_tokens) == out.n_tokens else out.tokens
    texts = piece_texts(out.tokens, raw)
    return [{"text": "".join(texts[a:b]), "start": a, "stop": b, "pieces": list(raw[a:b])}
            for a, b in word_spans(texts, _breaks(out))]


def by_word(out: Any, plain: bool = True) -> Any:
    """``out.by_word()``: the same result class with words as tokens (see the module docstring for what each
    array becomes). Shapes: ranks (n_layers, n_words - 1), hidden_states (n_layers + 1, n_words, d_model), ...;
    ``piece_starts`` int64 (n_words + 1,) gives the token range of each word. plain: ``out`` is a plain Output
    (the other kinds have token-indexed fields of their own, with no word-level form yet)."""
    if getattr(out, "unit", "token") == "word":
        return out
    if not plain:
        raise NotAvailableError(f"Words are available for causal-LM outputs; this is a {type(out).__name__}, whose "
                                "extra token-indexed fields have no word-level form yet. Use the token views.")
    found = words_of(out)
    starts = np.array([w["start"] for w in found] + [out.n_tokens], dtype=np.int64)
    first, last = starts[:-1], starts[1:] - 1
    word_of = np.repeat(np.arange(len(found)), np.diff(starts))
    n_cols = out.ranks.shape[1]
    cols = last[:-1] if n_cols == out.n_tokens - 1 else last[last < n_cols]

    def at(array: np.ndarray | None, axis: int, index: np.ndarray) -> np.ndarray | None:
        return None if array is None else np.take(array, index, axis=axis)

    fields: dict[str, Any] = dict(
        token_ids=out.token_ids[last], tokens=[w["text"] for w in found],
        raw_tokens=[" ".join(w["pieces"]) for w in found], n_input_tokens=int(word_of[out.n_input_tokens - 1] + 1)
        if out.n_input_tokens else 0, ranks=out.ranks[:, cols], topk_ids=at(out.topk_ids, 1, last),
        topk_probs=at(out.topk_probs, 1, last), target_probs=at(out.target_probs, 1, cols),
        entropy=at(out.entropy, 1, cols), kl_to_final=at(out.kl_to_final, 1, cols),
        hidden_states=at(out.hidden_states, 1, last), activations=at(out.activations, 1, last),
        vocab_text=dict(out.vocab_text), layer_labels=list(out.layer_labels),
        unit="word", pieces=[w["pieces"] for w in found], piece_starts=starts,
        turns=[dict(t, start=int(word_of[t["start"]]), stop=int(word_of[t["stop"] - 1] + 1)) for t in out.turns
               if t["stop"] > t["start"]],
        special_mask=None if out.special_mask is None else np.asarray(out.special_mask, bool)[first],
        features={name: f.take(last) for name, f in (getattr(out, "features", None) or {}).items()},
    )
    if out.attention_weights is not None:
        queries = np.take(out.attention_weights, last, axis=2)
        fields["attention_weights"] = np.add.reduceat(queries, first, axis=3)
    fields.update(_word_attributions(out, word_of))
    return dataclasses.replace(out, **fields)


def _word_attributions(out: Any, word_of: np.ndarray) -> dict[str, Any]:
    """targets, attributions_raw (rows of each word's first explained piece; the piece columns are kept and
    summed by out.attributions after aggregation), convergence_deltas and attribution_settings at word level."""
    if out.targets is None:
        return {}
    rows, seen = [], set()
    for r, t in enumerate(np.asarray(out.targets).tolist()):
        if word_of[t] not in seen:
            seen.add(word_of[t])
            rows.append(r)
    rows_a = np.asarray(rows, dtype=np.int64)
    settings = dict(out.attribution_settings)
    for key, value in out.attribution_settings.items():
        if key.endswith("_change") and isinstance(value, list) and len(value) == len(out.targets):
            settings[key] = [value[r] for r in rows]
    if settings.get("kept_positions"):
        settings["kept_positions"] = sorted({int(word_of[p]) for p in settings["kept_positions"]})
    return {"targets": word_of[np.asarray(out.targets)[rows_a]].astype(np.int64),
            "attributions_raw": {m: raw[rows_a] for m, raw in out.attributions_raw.items()},
            "convergence_deltas": {m: d[rows_a] for m, d in out.convergence_deltas.items()},
            "attribution_settings": settings}


def sum_pieces(values: np.ndarray, piece_starts: np.ndarray | None) -> np.ndarray:
    """(n_targets, n_tokens) values -> (n_targets, n_words): each word the sum over its pieces (no-op without
    ``piece_starts``)."""
    if piece_starts is None or values.shape[-1] != int(piece_starts[-1]):
        return values  # token level, or already one column per word
    return np.add.reduceat(values, np.asarray(piece_starts[:-1], dtype=np.int64), axis=-1)


def at_unit(out: Any, unit: str | None) -> Any:
    """``out`` at ``unit`` ("token", "word"; None: its own)."""
    if unit is None or unit == getattr(out, "unit", "token"):
        return out
    if unit not in UNITS:
        raise InputError(f"unit must be 'token' or 'word', got {unit!r}.")
    if unit == "word":
        return out.by_word()
    raise InputError("This output is already at word level (out.by_word()); call the view on the token-level "
                     "output for tokens.")


def with_unit(view: bool = True) -> Callable:
    """Decorator: the method gains ``unit=None`` ("token" / "word") and runs on ``at_unit(self, unit)``; for a
    view, the view is told its unit (``unit=`` trait: tooltips list each word's pieces, legends say how a word's
    value is formed)."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, *args: Any, unit: str | None = None, **kwargs: Any) -> Any:
            target = at_unit(self, unit)
            if view and getattr(target, "unit", "token") == "word":
                kwargs.setdefault("unit", "word")
            return method(target, *args, **kwargs)

        signature = inspect.signature(method)
        params = list(signature.parameters.values())
        where = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
        params.insert(where, inspect.Parameter("unit", inspect.Parameter.KEYWORD_ONLY, default=None,
                                               annotation="str | None"))
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper
    return decorate


def add_units(cls: type, views: Sequence[str], others: Sequence[str]) -> None:
    """Give the methods ``views`` (view builders) and ``others`` of ``cls`` the ``unit=`` argument (:func:`with_unit`)."""
    for name in views:
        setattr(cls, name, with_unit(view=True)(getattr(cls, name)))
    for name in others:
        setattr(cls, name, with_unit(view=False)(getattr(cls, name)))


def chat_options(out: Any) -> dict[str, Any]:
    """The view options that carry an output's turns and special tokens (empty when it has none)."""
    turns, special = getattr(out, "turns", None) or [], getattr(out, "special_mask", None)
    options: dict[str, Any] = {}
    if turns:
        options["turns"] = list(turns)
    if special is not None and np.asarray(special).any():
        options["special"] = np.asarray(special).astype(np.uint8)
    return options
