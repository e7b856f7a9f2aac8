"""``ew.load_batch(folder)``: a batch run read back lazily: one prompt's row as an Output, the per-prompt scalars
as a pandas DataFrame, the dataset summaries as a view.

>>> import sys, tempfile; sys.path.insert(0, "tests")
>>> import zoo, ecco_widgets as ew
>>> from test_foundation import ToyTokenizer, WORDS
>>> lm = ew.LanguageModel(zoo.build("gpt2"), tokenizer=ToyTokenizer(WORDS))
>>> folder = tempfile.mkdtemp()
>>> _ = ew.batch(lm, ["w1 w2 w3", "w4 w5"], folder, progress=False)
>>> results = ew.load_batch(folder)
>>> results[1].tokens, results.frame()["n_tokens"].tolist()
(['w4', 'w5'], [3, 2])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError, NotAvailableError
from ..results import Output
from .inputs import _pyarrow
from .rows import SCALAR_COLUMNS, row_output
from .store import MANIFEST, part_indices, read_manifest


class BatchResults:
    """The rows of a batch folder, indexed by prompt index (the prompt's place in the input). Nothing is read until
    asked for, except each part file's prompt_index column."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            raise InputError(f"{self.path} holds no batch run (no {MANIFEST}); write one with ew.batch or "
                             "`ecco-widgets batch`.")
        self.manifest: dict[str, Any] = read_manifest(manifest)
        _pyarrow()

        self._where: dict[int, tuple[Path, int]] = {}
        self.duplicates: list[int] = []
        for part in sorted(self.path.glob("part-*.parquet")):
            for group, index in enumerate(part_indices(part, self.manifest)):
                if index in self._where:
                    self.duplicates.append(index)
                else:
                    self._where[index] = (part, group)

    def __repr__(self) -> str:
        return (f"BatchResults({str(self.path)!r}: {len(self)} of {self.n_prompts} prompts, model "
                f"{self.manifest.get('model')!r})")

    def __len__(self) -> int:
        return len(self._where)

    @property
    def n_prompts(self) -> int:
        """The number of prompts of the run (written or not)."""
        return int(self.manifest.get("n_prompts", len(self)))

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings (generate, attribution, n_steps, activations, ...), as in every part's metadata."""
        return dict(self.manifest.get("settings", {}))

    def indices(self) -> list[int]:
        """The prompt indices written, in order."""
        return sorted(self._where)

    def missing(self) -> list[int]:
        """The prompt indices not written yet (a run still going, or stopped: run it again to finish)."""
        return [i for i in range(self.n_prompts) if i not in self._where]

    def row(self, index: int) -> dict[str, Any]:
        """The stored row of prompt ``index``: list columns as flat numpy arrays, the rest as Python values."""
        if index not in self._where:
            raise InputError(f"Prompt {index} is not in {self.path} (written: {len(self)} of {self.n_prompts}; "
                             f"missing ones: run the batch again to finish).")
        import pyarrow.parquet as pq

        part, group = self._where[index]
        try:
            table = pq.ParquetFile(part).read_row_group(group)
            return {name: _value(table.column(name)) for name in table.column_names}
        except Exception as error:  # pyarrow's ArrowInvalid / OSError on a part damaged after the run
            raise InputError(f"{part} is damaged ({type(error).__name__}: {str(error)[:120]}); prompt {index}'s row "
                             "cannot be read. Move the file out and run the batch again to redo its prompts.") from None

    def __getitem__(self, index: int) -> Output:
        """Prompt ``index`` as the Output that lm.analyze / lm.generate gave for it (NotAvailableError for a prompt
        that failed, with its error)."""
        row = self.row(index)
        if row.get("error"):
            raise NotAvailableError(f"Prompt {index} failed in the batch run: {row['error']}")
        return row_output(row)

    def outputs(self) -> Iterator[tuple[int, Output]]:
        """(prompt index, Output) for every prompt that succeeded, read one at a time."""
        for index in self.indices():
            row = self.row(index)
            if not row.get("error"):
                yield index, row_output(row)

    def frame(self):
        """A pandas DataFrame, one row per written prompt (sorted by prompt index), of the per-prompt scalars:
        prompt_index, text, error, seconds, rank (the process), n_tokens, n_input_tokens, n_generated,
        next_token, next_token_rank1_layer (-1: never rank 1), mean_kl, and completeness_max/<method>."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = []
        for part in sorted({p for p, _ in self._where.values()}):
            try:
                names = pq.read_schema(part).names
                wanted = [n for n in names if n in SCALAR_COLUMNS or n.startswith("completeness_max/")]
                tables.append(pq.read_table(part, columns=wanted))
            except Exception as error:  # a part damaged after the run
                raise InputError(f"{part} is damaged ({type(error).__name__}: {str(error)[:120]}). Move it out and "
                                 "run the batch again to redo its prompts.") from None
        if not tables:
            import pandas as pd

            return pd.DataFrame(columns=list(SCALAR_COLUMNS))
        import pandas as pd

        table = pa.concat_tables(tables, promote_options="permissive")
        # whole numbers stay whole where an error row has none (pandas' nullable integers, not floats)
        nullable = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
        frame = table.to_pandas(types_mapper=nullable.get).sort_values("prompt_index")
        return frame.drop_duplicates("prompt_index").reset_index(drop=True)

    def errors(self):
        """The DataFrame rows of the prompts that failed."""
        frame = self.frame()
        return frame[frame["error"].notna()].reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """The dataset summaries (see :func:`ecco_widgets.batch.summary.summarize`)."""
        from .summary import summarize

        return summarize(self)

    def summary_view(self, **view_options):
        """The summaries as a BatchSummary view (exports offline like every view)."""
        from .summary import summary_view

        return summary_view(self, **view_options)


def _value(column) -> Any:
    """One row's cell: a numpy array for a list column, else the Python value."""
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        chunk = column.combine_chunks()
        if not chunk[0].is_valid:
            return None
        values = chunk.flatten()
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            return values.to_pylist()
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return column.to_pylist()[0]


def load_batch(path: str | Path) -> BatchResults:
    """The batch run in folder ``path``, read lazily (see :class:`BatchResults`)."""
    return BatchResults(path)
