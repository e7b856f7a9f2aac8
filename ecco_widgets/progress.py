"""Progress bars for the steps that can take more than a few seconds (capture, lens, attribution, NMF).

Each bar goes to stderr through ``tqdm.auto`` (a widget in notebooks), appears only once a step has run for a few
seconds (``progress=None``, the default), always (``True``) or never (``False``), and leaves nothing behind when
the step ends.

>>> with progress_bar(3, "demo", progress=False) as bar:
...     bar.update(3)
>>> with ticking("opaque step", progress=False):
...     pass
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

#: Seconds a step runs before its bar appears (progress=None).
DELAY_SECONDS = 3.0


@contextmanager
def progress_bar(total: int | None, desc: str, progress: bool | None, unit: str = "it") -> Iterator[Any]:
    """A tqdm bar over ``total`` units, shown as the module docstring says."""
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=progress is False,
              delay=0 if progress else DELAY_SECONDS, leave=False) as bar:
        yield bar


@contextmanager
def ticking(desc: str, progress: bool | None) -> Iterator[None]:
    """A bar that shows the elapsed time of one opaque call (e.g. scikit-learn's NMF), refreshed every second."""
    if progress is False:
        yield
        return
    done = threading.Event()
    with progress_bar(None, desc, progress, "s") as bar:
        def tick() -> None:
            while not done.wait(1.0):
                bar.update(1)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
