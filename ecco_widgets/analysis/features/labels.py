"""Feature labels: what each latent of a dictionary means, as a dict-like {index: description} (``sae.labels``).

Read from explanation exports (Neuronpedia's: a JSON list or JSONL lines of ``{"modelId", "layer", "index",
"description", "explanationModelName", "typeName", ...}``, its S3 dataset batches ``batch-N.jsonl.gz``, a feature's
``{"explanations": [...]}``; or any ``[{"index": ..., "description": ...}]`` / ``{"12": "..."}``), set by hand
(``sae.labels[12] = "dates"``), saved beside the SAE as ``labels.json`` and read back by ``SAE.load``. Files are
data: JSON only, never code.

>>> labels = Labels(d_sae=16)
>>> labels[3] = "dates"
>>> labels.update(Labels.from_records([{"index": "7", "description": " closing brackets"}]))
>>> dict(labels), labels.records()[0]
({3: 'dates', 7: ' closing brackets'}, {'index': 3, 'description': 'dates'})
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ...errors import InputError

#: the file SAE.save_labels writes and SAE.load reads, in the SAE's folder
LABELS_FILE = "labels.json"
#: the field names a record may carry its index and its description under (Neuronpedia: index, description)
INDEX_KEYS = ("index", "feature", "feature_index", "latent")
TEXT_KEYS = ("description", "explanation", "label")


class Labels(MutableMapping):
    """{latent index (int, 0..d_sae-1): description (str)}; keys and values are checked as they are set."""

    def __init__(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = (), d_sae: int | None = None):
        self.d_sae = d_sae
        self._items: dict[int, str] = {}
        self.update(items)

    # ----- the mapping -----
    def _key(self, index: Any) -> int:
        if isinstance(index, bool) or not hasattr(index, "__index__"):
            raise InputError(f"A label's index must be an int (a latent of the dictionary), got {index!r}.")
        i = int(index.__index__())
        if i < 0 or (self.d_sae is not None and i >= self.d_sae):
            top = "" if self.d_sae is None else f"..{self.d_sae - 1}"
            raise InputError(f"Label index {i} is not a latent of this dictionary (0{top}).")
        return i

    def __setitem__(self, index: Any, text: Any) -> None:
        if not isinstance(text, str):
            raise InputError(f"The label of latent {index!r} must be a str, got {type(text).__name__}.")
        self._items[self._key(index)] = text

    def __getitem__(self, index: Any) -> str:
        return self._items[self._key(index)]

    def __delitem__(self, index: Any) -> None:
        del self._items[self._key(index)]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = ", ".join(f"{i}: {t!r}" for i, t in list(self.items())[:3])
        return f"Labels({len(self)} of {self.d_sae or '?'} latents{': ' + shown if shown else ''}" \
               f"{', ...' if len(self) > 3 else ''})"

    def of(self, indices: Iterable[int]) -> dict[int, str]:
        """The labels of ``indices`` that have one (a view sends only the features it shows)."""
        return {int(i): self._items[int(i)] for i in indices if int(i) in self._items}

    # ----- reading -----
    @classmethod
    def from_records(cls, records: Any, d_sae: int | None = None, layer: str | None = None,
                     source: str = "labels", lines: list[int] | None = None) -> Labels:
        """Labels from parsed JSON: a list of records (``{"index", "description"}``, Neuronpedia's field names), a
        ``{"explanations": [...]}`` object, or a plain ``{index: description}`` dict. The first description of an
        index wins (Neuronpedia lists one per explanation model); empty ones are skipped. ``layer``: keep the
        records of this Neuronpedia SAE id only (needed when the records name several). ``lines``: each record's line
        in a JSONL file (errors name the line, else the entry)."""
        if isinstance(records, Mapping) and isinstance(records.get("explanations"), list):
            records = records["explanations"]
        elif isinstance(records, Mapping):
            records = [{"index": k, "description": v} for k, v in records.items()]
        if not isinstance(records, list):
            raise InputError(f"{source}: expected a JSON list of {{\"index\": ..., \"description\": ...}} records "
                             f"(or an object of them), got {type(records).__name__}.")
        out = cls(d_sae=d_sae)
        layers = sorted({str(r["layer"]) for r in records if isinstance(r, Mapping) and "layer" in r})
        if layer is None and len(layers) > 1:
            raise InputError(f"{source} holds the explanations of {len(layers)} dictionaries (layer "
                             f"{', '.join(layers[:6])}{', ...' if len(layers) > 6 else ''}): name one with "
                             "layer=..., e.g. Labels.read(path, layer='6-res-jb').")
        for n, record in enumerate(records):
            where = f"{source}, line {lines[n]}" if lines else f"{source}, entry {n}"
            index, text = _parse(record, where)
            if layer is not None and str(record.get("layer", layer)) != str(layer):
                continue
            if text.strip() and index not in out._items:
                try:
                    out[index] = text
                except InputError as err:
                    raise InputError(f"{where}: {err}") from None
        return out

    @classmethod
    def read(cls, path: str | Path, d_sae: int | None = None, layer: str | None = None) -> Labels:
        """Labels from a file: JSON (a list, an object), or JSONL (one record a line), either gzipped (``.gz``).
        A malformed file raises an InputError naming the line or entry and what was expected."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError(f"{path} is not a file: expected a JSON or JSONL explanation export.")
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError) as err:
            raise InputError(f"{path}: not a readable gzip file ({err}).") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{path} is not UTF-8 text (byte {err.start}): expected JSON or JSONL.") from None
        stem = path.name[:-3] if path.suffix == ".gz" else path.name
        if stem.endswith(".jsonl"):
            return cls.from_records(**_jsonl(text, path), d_sae=d_sae, layer=layer, source=str(path))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            if err.msg == "Extra data" and _one_line_json(text):  # JSONL under another name
                return cls.from_records(**_jsonl(text, path), d_sae=d_sae, layer=layer, source=str(path))
            raise InputError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno} ({err.msg}); expected "
                             "a list of {\"index\": ..., \"description\": ...} records, or JSONL (one a line).") from None
        return cls.from_records(data, d_sae=d_sae, layer=layer, source=str(path))

    def load(self, path: str | Path, layer: str | None = None) -> Labels:
        """Adds the labels of an export file (see ``read``; checked against this dictionary's d_sae), the file's
        replacing those set before; returns self. Example: ``sae.labels.load("explanations/batch-0.jsonl.gz")``."""
        self.update(type(self).read(path, d_sae=self.d_sae, layer=layer))
        return self

    # ----- writing -----
    def records(self) -> list[dict[str, Any]]:
        """[{"index": int, "description": str}], by index: the form ``save`` writes and ``read`` reads back."""
        return [{"index": i, "description": t} for i, t in self.items()]

    def save(self, folder: str | Path) -> Path:
        """Writes ``folder/labels.json`` (a JSON list of records); returns its path."""
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder: labels are saved beside the SAE's files, in its folder.")
        path = folder / LABELS_FILE
        path.write_text(json.dumps(self.records(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        return path


def _parse(record: Any, where: str) -> tuple[int, str]:
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: expected an object {{\"index\": ..., \"description\": ...}}, got "
                         f"{type(record).__name__} {str(record)[:40]!r}.")
    index = next((record[k] for k in INDEX_KEYS if k in record), None)
    text = next((record[k] for k in TEXT_KEYS if k in record), None)
    if index is None or text is None:
        missing = " and ".join(n for n, v in (("index", index), ("description", text)) if v is None)
        raise InputError(f"{where}: has no {missing} (fields {', '.join(map(repr, list(record)[:8]))}); expected "
                         f"{{\"index\": ..., \"description\": ...}} (index under {'/'.join(INDEX_KEYS)}, "
                         f"description under {'/'.join(TEXT_KEYS)}).")
    if isinstance(index, str) and index.strip().isdigit():
        index = int(index)  # Neuronpedia writes indices as strings
    if isinstance(index, bool) or not isinstance(index, int):
        raise InputError(f"{where}: index {index!r} is not a whole number.")
    if not isinstance(text, str):
        raise InputError(f"{where}: description of index {index} is {type(text).__name__}, expected a string.")
    return index, text


def _one_line_json(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _jsonl(text: str, path: Path) -> dict[str, list]:
    """{"records": the parsed lines, "lines": their line numbers} (blank lines skipped)."""
    out, lines = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
            lines.append(n)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}, line {n}: not valid JSON ({err.msg}, column {err.colno}); expected one "
                             "{\"index\": ..., \"description\": ...} record a line.") from None
    return {"records": out, "lines": lines}


def labels_beside(folder: Path | None, d_sae: int) -> Labels:
    """The labels saved in an SAE's folder (``labels.json``), empty when there are none."""
    path = Path(folder) / LABELS_FILE if folder is not None else None
    if path is None or not path.is_file():
        return Labels(d_sae=d_sae)
    return Labels.read(path, d_sae=d_sae)
