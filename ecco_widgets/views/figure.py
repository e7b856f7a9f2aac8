"""Static figures of a view for papers: ``view.save_svg(path)`` and ``view.save_png(path)``.

Where a browser is available (Debian's ``chromium`` driven headless through Playwright, the package's test
extra): the view's offline page (:mod:`ecco_widgets.views.export`) is opened from a temporary file, the view is
laid out whole (no horizontal scrolling, no hover state) and asked for its SVG (``root.ewFigure.svg()`` in
``js/src/lib/figure.js``: boxes, texts, gradient legends, canvases and inline SVGs redrawn from the browser's
layout), or screenshot as a PNG of the view element.  Light or dark (``theme=``), legends included.  Nothing is
fetched: the page is offline and every request other than ``file:`` / ``data:`` / ``blob:`` is aborted.

>>> from ecco_widgets.views.figure import figure_theme
>>> figure_theme("auto", None), figure_theme("auto", "dark")
('light', 'dark')
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from ..errors import NotAvailableError
from .arrays import ViewValueError
from .export import save_html

__all__ = ["CHROMIUM_ARGS", "chromium_executable", "figure_theme", "render_png", "render_svg"]

#: the same flags as tools/chromium.py (the package cannot import tools/; a test keeps the two equal)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_LOCAL = ("file:", "data:", "blob:", "about:")


def chromium_executable() -> str | None:
    """Path of the system Chromium (Debian's ``chromium``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def figure_theme(view_theme: str, theme: str | None) -> str:
    """The theme a figure is drawn in: ``theme`` if given, else the view's (``"auto"`` -> ``"light"``)."""
    chosen = theme if theme is not None else view_theme
    if chosen not in ("auto", "light", "dark"):
        raise ValueError(f"theme: {chosen!r} is not one of light, dark")
    return "light" if chosen == "auto" else chosen


class _Themed:
    """A view's export with another theme (what export.save_html needs: _bundle, title, export_state)."""

    def __init__(self, view: Any, theme: str) -> None:
        self._bundle = view._bundle
        self.title = view.title
        self._view = view
        self._theme = theme

    def export_state(self) -> dict[str, Any]:
        return {**self._view.export_state(), "theme": self._theme}


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a fresh thread: Playwright's sync API refuses to run inside an asyncio loop (a notebook's)."""
    out: list[Any] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            err.append(exc)

    t = threading.Thread(target=run, name="ecco-widgets-figure")
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


#: save_png's pixels per CSS pixel: a 1,000x figure of a 1,280-pixel view would be 1.6 gigapixels wide
MIN_SCALE, MAX_SCALE = 0.25, 8


def _with_page(view: Any, theme: str | None, scale: float, fn: Callable[[Any, Any], Any]) -> Any:
    """Open the view's offline page in headless Chromium, lay the view out whole and call ``fn(page, root)``."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not MIN_SCALE <= scale <= MAX_SCALE:
        raise ViewValueError(f"scale must be a number from {MIN_SCALE} to {MAX_SCALE} (pixels per CSS pixel), got "
                             f"{scale!r}.")
    exe = chromium_executable()
    if exe is None:
        raise NotAvailableError("save_svg / save_png draw the view in Chromium, which is not installed here "
                                "(Debian: apt-get install -y chromium); ew.save_html needs no browser.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise NotAvailableError("save_svg / save_png need playwright (pip install playwright); ew.save_html needs "
                                "no browser.") from None
    page_theme = figure_theme(view.theme, theme)

    def run() -> Any:
        work = pathlib.Path(tempfile.mkdtemp(prefix="ew-figure-"))
        try:
            html = save_html(_Themed(view, page_theme), work / "view.html", title=None)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
                try:
                    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=scale,
                                              color_scheme=page_theme)
                    page = ctx.new_page()
                    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(_LOCAL) else r.abort())
                    page.goto(html.resolve().as_uri())
                    page.wait_for_function("() => document.body.dataset.ewReady === '1' || document.body.dataset.ewError")
                    error = page.evaluate("() => document.body.dataset.ewError || null")
                    if error:
                        raise RuntimeError(f"the view did not render: {error}")
                    root = page.locator(".ew-root").first
                    # the whole view, unscrolled: as wide as its content, in a viewport wide enough for it
                    size = root.evaluate("(r) => { r.ewFigure.prepare(); const b = r.getBoundingClientRect();"
                                         " return [Math.ceil(b.right) + 32, Math.ceil(b.bottom) + 32]; }")
                    page.set_viewport_size({"width": max(1280, size[0]), "height": max(900, size[1])})
                    page.mouse.move(0, 0)
                    return fn(page, root)
                finally:
                    browser.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return _in_thread(run)


def render_svg(view: Any, theme: str | None = None) -> str:
    """The view as an SVG document (a string)."""
    return _with_page(view, theme, 1, lambda page, root: root.evaluate("(r) => r.ewFigure.svg()"))


def render_png(view: Any, path: str | os.PathLike[str], theme: str | None = None, scale: float = 2) -> pathlib.Path:
    """Write a PNG screenshot of the view element (``scale`` pixels per CSS pixel); returns the path."""
    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _with_page(view, theme, scale, lambda page, root: root.screenshot(path=str(out), animations="disabled"))
    return out
