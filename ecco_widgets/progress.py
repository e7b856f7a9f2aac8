"""Progress bars for the steps that can take more than a few seconds (capture, lens, attribution, NMF).

A bar appears only once a step has run for a few seconds (``progress=None``, the default), always (``True``) or
never (``False``), and leaves nothing behind when the step ends:

- in a terminal or a script, on stderr through ``tqdm.auto`` (the line is erased at the end);
- in a notebook kernel (Jupyter, VS Code, Colab: an IPython kernel), never on stderr, which front ends draw as a
  pink box that stays even when the bar erased itself: the bar is a text output updated in place (a display
  handle) and blanked when the step ends. It needs no ipywidgets and leaves no closed widget behind.

>>> with progress_bar(3, "demo", progress=False) as bar:
...     bar.update(3)
>>> with ticking("opaque step", progress=False):
...     pass
"""

from __future__ import annotations

import sys
import threading
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

#: Seconds a step runs before its bar appears (progress=None).
DELAY_SECONDS = 3.0


def in_notebook() -> bool:
    """True inside an IPython kernel (a notebook front end), False in a terminal, a script or plain IPython.

    >>> in_notebook()
    False
    """
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None) if shell else None
    ip = get() if get else None
    return ip is not None and (type(ip).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(ip, "config", {}))


class DisplayLine:
    """A file-like target for tqdm that shows the last line written as one text output, updated in place.

    ``close()`` blanks it. Outside a kernel (no IPython display) it writes nothing.
    Example: ``tqdm(range(3), file=DisplayLine())`` in a notebook cell.
    """

    def __init__(self) -> None:
        self.display_id = f"ew-progress-{uuid.uuid4().hex}"
        self.shown = False
        self.text = ""

    def _show(self, text: str) -> None:
        from IPython.display import display, update_display

        bundle = {"text/plain": text}
        if self.shown:
            update_display(bundle, raw=True, display_id=self.display_id)
        else:
            display(bundle, raw=True, display_id=self.display_id)
            self.shown = True

    def write(self, s: str) -> int:
        line = s.replace("\r", "").rstrip()
        if line and line != self.text:
            self.text = line
            self._show(line)
        return len(s)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Blank the output (an empty text output draws nothing)."""
        if self.shown:
            self._show("")
        self.text = ""


@contextmanager
def progress_bar(total: int | None, desc: str, progress: bool | None, unit: str = "it") -> Iterator[Any]:
    """A tqdm bar over ``total`` units, shown as the module docstring says."""
    notebook = progress is not False and in_notebook()
    if notebook:
        from tqdm.std import tqdm

        target: Any = DisplayLine()
        options = {"ascii": True, "ncols": 100}
    else:
        from tqdm.auto import tqdm

        target = sys.stderr
        options = {}
    try:
        with tqdm(total=total, desc=desc, unit=unit, file=target, disable=progress is False,
                  delay=0 if progress else DELAY_SECONDS, leave=False, **options) as bar:
            yield bar
    finally:
        if notebook:
            target.close()


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
