"""The folder of a batch run: Parquet part files (one row per prompt) and a manifest of the run's settings.

Each flush writes one complete part file (``part-r<rank>-<n>-<random>.parquet``) under a temporary name and renames
it, so a killed process leaves only whole files (a ``.tmp`` is ignored and removed on the next run). A resumed run
skips every prompt index found in a whole file: nothing lost, nothing twice. The manifest (``_ecco_batch.json``) holds
the model name, the settings and the prompts' fingerprint; a run with other settings into the same folder is refused.

>>> import tempfile
>>> folder = RunFolder(tempfile.mkdtemp())
>>> folder.check_manifest({"model": "m", "settings": {"generate": 0}, "n_prompts": 2, "prompts_sha256": "ab"})
>>> row = {"prompt_index": 1, "text": "x", "error": "empty prompt", "seconds": 0.0, "rank": 0}
>>> _ = folder.write_part([row], rank=0, metadata={"model": "m", "settings": {"generate": 0}})
>>> sorted(folder.done_indices())
[1]
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from .inputs import _pyarrow
from .rows import SCALAR_COLUMNS, expected_columns

MANIFEST = "_ecco_batch.json"  # a leading "_": Parquet readers (pyarrow, pandas) skip it
LOCK = "_ecco_batch.lock"  # the pid and host of the run writing into the folder
FORMAT = "ecco_widgets.Batch/1"


class RunFolder:
    """The output folder of one batch run (created when missing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"--out {self.path} is a file; give a folder (it is created when missing).")
        self.path.mkdir(parents=True, exist_ok=True)
        self._written = 0

    # ----- the manifest -----
    def manifest(self) -> dict[str, Any] | None:
        """The manifest of the run in this folder, or None."""
        path = self.path / MANIFEST
        return read_manifest(path) if path.exists() else None

    def check_manifest(self, manifest: dict[str, Any], write: bool = True) -> None:
        """Refuse a folder holding another run (other model, settings or prompts); else write ``manifest`` when
        there is none (atomically: every process may call this)."""
        manifest = {"format": FORMAT, **manifest}
        existing = self.manifest()
        if existing is not None:
            different = [k for k in ("format", "model", "model_fingerprint", "settings", "n_prompts",
                                     "prompts_sha256") if existing.get(k) != manifest.get(k)]
            if different:
                detail = "; ".join(f"{k}: folder has {existing.get(k)!r}, this run {manifest.get(k)!r}"
                                   for k in different)
                raise InputError(f"{self.path} holds another batch run ({detail}). Resume it with the same "
                                 "settings, or choose a new --out folder.")
            return
        if write:
            tmp = self.path / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
            tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, self.path / MANIFEST)

    # ----- the parts -----
    def part_files(self) -> list[Path]:
        """Every whole part file, in name order."""
        return sorted(self.path.glob("part-*.parquet"))

    def remove_partial_files(self) -> None:
        """Remove what a killed writer left (temporary files)."""
        for tmp in self.path.glob(".part-*.tmp"):
            tmp.unlink(missing_ok=True)

    def done_indices(self) -> set[int]:
        """The prompt indices already written (from the part files' prompt_index columns alone)."""
        _pyarrow()
        done: set[int] = set()
        manifest = self.manifest()
        for part in self.part_files():
            done.update(part_indices(part, manifest))
        return done

    # ----- one writer at a time -----
    def lock(self) -> "RunLock":
        """The folder's writer lock (a context manager): a second run into the folder while this one writes is
        refused; a lock left by a process that no longer runs is taken over."""
        return RunLock(self.path / LOCK)

    def write_part(self, rows: Sequence[dict[str, Any]], rank: int, metadata: dict[str, Any] | None = None,
                   settings: dict[str, Any] | None = None) -> Path:
        """Write ``rows`` as one part file (one row group per row, so one row reads alone); returns its path."""
        pa = _pyarrow()
        import pyarrow.parquet as pq

        types = {**{k: getattr(pa, v)() for k, v in SCALAR_COLUMNS.items()}, **expected_columns(settings or {}, pa)}
        names: list[str] = list(types)
        for row in rows:
            names.extend(n for n in row if n not in names)
        columns = {}
        for name in names:  # every part has the columns the settings give, so the parts read as one dataset
            values = [row.get(name) for row in rows]
            columns[name] = pa.array(values, type=types.get(name))
        table = pa.table(columns)
        meta = {"ecco_widgets": json.dumps({"format": FORMAT, **(metadata or {})}, ensure_ascii=False)}
        table = table.replace_schema_metadata(meta)
        self._written += 1
        name = f"part-r{rank:05d}-{self._written:06d}-{secrets.token_hex(4)}.parquet"
        tmp = self.path / f".{name}.tmp"
        pq.write_table(table, tmp, row_group_size=1)
        os.replace(tmp, self.path / name)
        return self.path / name


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``; a damaged one is an InputError that names it."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise InputError(f"{path} is damaged ({type(error).__name__}: {str(error)[:120]}); the folder's run cannot be "
                         "read or resumed. Start again in a new --out folder.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path} is not an ecco_widgets batch manifest (format {FORMAT!r}).")
    return manifest


def part_indices(part: Path, manifest: dict[str, Any] | None) -> list[int]:
    """The prompt indices of one part file, after checking that the part is whole and was written by the run of
    ``manifest`` (its schema metadata names the same format, model and settings): a damaged or foreign file is an
    InputError that names it, never rows mixed into the results."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(part)
        meta = json.loads((schema.metadata or {}).get(b"ecco_widgets", b"null"))
        indices = pq.read_table(part, columns=["prompt_index"]).column(0).to_pylist()
    except Exception as error:  # pyarrow's ArrowInvalid (truncated, bit-flipped), OSError, JSON
        raise InputError(f"{part} is damaged ({type(error).__name__}: {str(error)[:120]}). Move it out of the "
                         "folder (its prompts are run again on resume).") from None
    ours = isinstance(meta, dict) and meta.get("format") == FORMAT and (manifest is None or all(
        meta.get(k) == manifest.get(k) for k in ("model", "settings")))
    if not ours or not all(isinstance(i, int) for i in indices):
        raise InputError(f"{part} was not written by the batch run of this folder (its metadata names another "
                         "run, or none). Move it out of the folder: its rows would replace the run's own.")
    return indices


class RunLock:
    """``_ecco_batch.lock``: created exclusively, holding the writer's pid and host; removed when the run ends."""

    def __init__(self, path: Path):
        self.path = path
        self.mine = False

    def __enter__(self) -> "RunLock":
        import socket

        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner, me["host"]):
                    raise InputError(f"Another batch run (pid {owner.get('pid')} on {owner.get('host')}) is writing "
                                     f"into {self.path.parent}; wait for it to finish, or choose another --out "
                                     "folder.") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.mine = True
            return self
        raise InputError(f"Could not take the lock {self.path}: another run keeps taking it.")

    def __exit__(self, *exc: Any) -> None:
        if self.mine:
            self.path.unlink(missing_ok=True)

    def _owner(self) -> dict[str, Any] | None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return None
        return owner if isinstance(owner, dict) else None


def _alive(owner: dict[str, Any], host: str) -> bool:
    """Whether the lock's owner still runs (a process on another host is taken to run)."""
    if owner.get("host") != host:
        return True
    try:
        os.kill(int(owner.get("pid", -1)), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
