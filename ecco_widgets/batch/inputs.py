"""The prompts of a batch run, read from a JSON Lines file, a JSON list, a Parquet file or a Hugging Face dataset
folder (``Dataset.save_to_disk``), checked before any model is loaded.

>>> import json, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "prompts.jsonl")
>>> _ = open(path, "w").write(json.dumps({"text": "Hello"}) + "\\n" + json.dumps({"text": "World"}) + "\\n")
>>> read_prompts(path, field="text")
['Hello', 'World']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError


def read_prompts(source: str | Path, field: str = "text") -> list[Any]:
    """The values of ``field`` in ``source``, one per prompt, in the source's order (strings when well formed; a
    value of another type is kept so that its row can record the error).

    source: a ``.jsonl`` file (one JSON object per line), a ``.json`` file (a list of objects or of strings), a
    ``.parquet`` file, or a folder written by ``datasets.Dataset.save_to_disk`` (its Arrow files, read with pyarrow).
    """
    path = Path(source)
    if not path.exists():
        raise InputError(f"--input {path} does not exist; give a .jsonl / .json / .parquet file or a dataset folder "
                         "saved with datasets' save_to_disk.")
    readers = {".jsonl": _json_lines, ".json": _json_list, ".parquet": _parquet}
    if not path.is_dir() and path.suffix not in readers:
        raise InputError(f"--input {path}: unknown kind of file {path.suffix!r}; use .jsonl, .json, .parquet or a "
                         "dataset folder.")
    read = _dataset_folder if path.is_dir() else readers[path.suffix]
    try:
        records = read(path)
    except UnicodeDecodeError as error:
        raise InputError(f"--input {path} is not UTF-8 text (byte {error.start}: {error.reason}); JSON and JSON Lines "
                         "files must be UTF-8.") from None
    except InputError:
        raise
    except Exception as error:  # pyarrow's ArrowInvalid / ArrowIOError, OSError: a damaged or foreign file
        if not (type(error).__module__.startswith("pyarrow") or isinstance(error, (OSError, ValueError, KeyError))):
            raise
        raise InputError(f"--input {path} could not be read as {'a dataset folder' if path.is_dir() else path.suffix}"
                         f" ({type(error).__name__}: {str(error)[:200]}). Is it damaged, or another kind of file?") \
            from None
    if not records:
        raise InputError(f"--input {path} holds no prompts.")
    return [_field(record, field, path, i) for i, record in enumerate(records)]


def _field(record: Any, field: str, path: Path, index: int) -> Any:
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        raise InputError(f"{path}: record {index} is a {type(record).__name__}; each must be an object with a "
                         f"{field!r} field (or a string).")
    if field not in record:
        raise InputError(f"{path}: record {index} has no field {field!r}; its fields are {sorted(record)}. Choose "
                         "one with --field.")
    return record[field]


def _json_lines(path: Path) -> list[Any]:
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f"{path}, line {number}: not JSON ({error.msg}). Each line must be one JSON "
                                 "object, e.g. {\"text\": \"...\"}.") from None
    return records


def _json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not JSON ({error.msg} at line {error.lineno}).") from None
    if not isinstance(data, list):
        raise InputError(f"{path} holds a JSON {type(data).__name__}; it must be a list of objects or strings.")
    return data


def _pyarrow():
    try:
        import pyarrow
    except ImportError:
        raise InputError("Batch runs store Parquet through pyarrow, which is not installed: "
                         "pip install 'ecco-widgets[batch]' (or pip install pyarrow pandas).") from None
    return pyarrow


def _parquet(path: Path) -> list[dict]:
    _pyarrow()
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _dataset_folder(path: Path) -> list[dict]:
    """A ``save_to_disk`` folder: state.json names its Arrow stream files, in order."""
    pa = _pyarrow()
    state = path / "state.json"
    if not state.exists():
        if (path / "dataset_dict.json").exists():
            splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
            raise InputError(f"{path} is a DatasetDict; point --input at one split's folder: "
                             f"{', '.join(str(path / s) for s in splits)}.")
        raise InputError(f"{path} is a folder but not a dataset saved with save_to_disk (no state.json).")
    files: Sequence[dict] = json.loads(state.read_text()).get("_data_files", [])
    tables = []
    for entry in files:
        with pa.memory_map(str(path / entry["filename"])) as source:
            tables.append(pa.ipc.open_stream(source).read_all())
    if not tables:
        return []
    return pa.concat_tables(tables).to_pylist()
