"""Batch analysis: many prompts, sharded over the processes of torch.distributed, stored as one Parquet dataset.

``ew.batch(lm, prompts, "results/")`` / ``ecco-widgets batch ...`` write it; ``ew.load_batch("results/")`` reads
it back (one row -> an Output; a DataFrame of per-prompt scalars; summaries as a view).
"""

from .reader import BatchResults, load_batch
from .runner import batch

__all__ = ["BatchResults", "batch", "load_batch"]
