"""The folder of a batch run: Parquet part files (one row per prompt) and a manifest of the run's settings.

Each flush writes one complete part file (``part-r<rank>-<n>-<random>.parquet``) under a temporary name and renames
it, so a killed process leaves only whole files (a ``.tmp`` is ignored and removed on the next run). A resumed run
skips every prompt index found in a whole file: nothing lost, nothing twice. The manifest (``_ecco_batch.json``) holds
the model name, the settings and the prompts' fingerprint; a run with other settings into the same folder is refused.

>>> import tempfile
>>> folder = RunFolder(tempfile.mkdtemp())
>>> folder.check_manifest({"model": "m", "settings": {"generate": 0}, "n_prompts": 2, "prompts_sha256": "ab"})
>>> _ = folder.write_part([{"prompt_index": 1, "text": "x", "error": "empty prompt", "seconds": 0.0, "rank": 0}], rank=0)
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
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def check_manifest(self, manifest: dict[str, Any], write: bool = True) -> None:
        """Refuse a folder holding another run (other model, settings or prompts); else write ``manifest`` when
        there is none (atomically: every process may call this)."""
        manifest = {"format": FORMAT, **manifest}
        existing = self.manifest()
        if existing is not None:
            different = [k for k in ("format", "model", "settings", "n_prompts", "prompts_sha256")
                         if existing.get(k) != manifest.get(k)]
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
        import pyarrow.parquet as pq

        done: set[int] = set()
        for part in self.part_files():
            done.update(pq.read_table(part, columns=["prompt_index"]).column(0).to_pylist())
        return done

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
