"""Raw tokenizer pieces -> display text, per tokenizer family.

Byte-level BPE ("Ġis", "Ċ"), SentencePiece ("▁is", byte fallback "<0x0A>") and WordPiece ("##ing") pieces become
the text a reader expects (" is", "\\n", "ing"). Special tokens keep their raw form.

>>> display_piece("Ġkeys", "bytelevel"), display_piece("Ċ", "bytelevel")
(' keys', '\\n')
>>> display_piece("▁is", "sentencepiece"), display_piece("<0x0A>", "sentencepiece")
(' is', '\\n')
>>> display_piece("##ing", "wordpiece"), display_piece("cab", "wordpiece")
('ing', ' cab')
"""

from __future__ import annotations

import json
import re
import weakref
from functools import lru_cache
from typing import Any, Sequence

_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes-to-unicode table (the printable stand-in of every byte), from transformers."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


_FAMILIES: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def tokenizer_family(tokenizer) -> str:
    """'bytelevel', 'sentencepiece', 'wordpiece' or 'unknown', read from the tokenizer's decoder (once per
    tokenizer: serialising a large tokenizer.json to read it took 0.18 s a call on SmolLM2's)."""
    try:
        return _FAMILIES[tokenizer]
    except (KeyError, TypeError):  # not seen yet, or an object that cannot be weakly referenced
        pass
    family = _read_family(tokenizer)
    try:
        _FAMILIES[tokenizer] = family
    except TypeError:
        pass
    return family


def _read_family(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        try:
            decoder = json.loads(backend.to_str()).get("decoder") or {}
        except Exception:  # noqa: BLE001 - an unreadable tokenizer.json just means "unknown"
            decoder = {}
        kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders", []) or []}
        if "ByteLevel" in kinds:
            return "bytelevel"
        if "WordPiece" in kinds:
            return "wordpiece"
        if "Metaspace" in kinds or "ByteFallback" in kinds or "Replace" in kinds:
            return "sentencepiece"
    if hasattr(tokenizer, "sp_model"):
        return "sentencepiece"
    return "unknown"


def display_piece(raw: str, family: str, is_first: bool = False) -> str:
    """Display text of one raw piece."""
    if family == "bytelevel":
        table = _byte_decoder()
        if all(ch in table for ch in raw):
            return bytes(table[ch] for ch in raw).decode("utf-8", errors="backslashreplace")
        return raw
    if family == "sentencepiece":
        match = _BYTE_FALLBACK.match(raw)
        if match:
            value = int(match.group(1), 16)
            return chr(value) if value < 0x80 else raw
        return raw.replace("▁", " ")
    if family == "wordpiece":
        if raw.startswith("##"):
            return raw[2:]
        return raw if is_first else " " + raw
    return raw


def display_tokens(tokenizer, token_ids: Sequence[int]) -> tuple[list[str], list[str]]:
    """(display texts, raw pieces) for a sequence of token ids.

    Special tokens ([CLS], <|endoftext|> …) are shown as their raw text.
    """
    ids = [int(i) for i in token_ids]
    raw = [str(p) for p in tokenizer.convert_ids_to_tokens(ids)]
    family = tokenizer_family(tokenizer)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    shown: list[str] = []
    for index, (token_id, piece) in enumerate(zip(ids, raw)):
        if token_id in special:
            shown.append(piece)
        elif family == "unknown":
            shown.append(tokenizer.decode([token_id]))
        else:
            previous_special = index > 0 and ids[index - 1] in special
            shown.append(display_piece(piece, family, is_first=index == 0 or previous_special))
    return shown, raw
