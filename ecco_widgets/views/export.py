"""Offline export: one self-contained HTML page showing one or more views.

The page follows ``docs/view_contract.md`` ("Offline export")::

    <div class="ew-view" id="ew-view-0"></div>
    <script type="application/json" id="ew-bundles">{"rank_grid": "<ESM source>", ...}</script>
    <script type="application/json" id="ew-views">[{"target": "ew-view-0", "bundle": ..., "state": {...}}]</script>
    <script type="module">/* ecco_widgets/static/standalone.js */</script>

No network is needed: the bundles are inlined as JSON strings, arrays as base64.  A view is anything
with a ``_bundle`` name and an ``export_state()`` (every :class:`~ecco_widgets.views.base.EccoView`); this
module imports no view, so ``EccoView.save_html`` can use it.

Example:

>>> import os, tempfile, numpy as np, ecco_widgets as ew
>>> g = ew.RankGrid(tokens=["a", "b", "c"], ranks=np.array([[3, 1]]))
>>> path = ew.save_html(g, os.path.join(tempfile.mkdtemp(), "grid.html"))
>>> "ew-bundles" in path.read_text()
True
"""

from __future__ import annotations

import html
import json
import os
import pathlib
import re
from collections.abc import Iterable
from typing import Any, Protocol

from .arrays import ViewValueError
from .bundles import bundle_path, read_bundle

__all__ = ["save_html", "to_html", "json_for_script"]

class ExportableView(Protocol):
    """What the page needs of a view: its bundle name, its state as JSON data and its title."""

    _bundle: str
    title: str

    def export_state(self) -> dict[str, Any]: ...


def _is_view(value: Any) -> bool:
    return isinstance(getattr(value, "_bundle", None), str) and callable(getattr(value, "export_state", None))


_SCRIPT_CLOSE = re.compile(r"</script", re.IGNORECASE)

# Defence in depth: even if some data ended up as markup, nothing may be fetched.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' blob: data:; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)

_PAGE_CSS = """
  body { margin: 1.5rem; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
  @media (prefers-color-scheme: dark) { body { background: #111; color: #eee; } }
  .ew-view { margin: 0 0 2rem 0; }
  h1.ew-page-title { font-size: 1.25rem; font-weight: 600; margin: 0 0 1rem 0; }
"""


def json_for_script(data: Any) -> str:
    """JSON text safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` (and U+2028/2029
    are escaped), so no data can close the script element or open a comment.
    """
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _as_views(view_or_list: ExportableView | Iterable[ExportableView]) -> list[ExportableView]:
    if _is_view(view_or_list):
        return [view_or_list]
    views = list(view_or_list)
    if not views:
        raise ValueError("save_html: give at least one view")
    for v in views:
        if not _is_view(v):
            raise TypeError(f"save_html: expected ecco_widgets views, got {type(v).__name__}")
    return views


def _standalone_source() -> str:
    path = bundle_path("standalone")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; build the front-end first (`npm --prefix js run build`)"
        )
    src = path.read_text(encoding="utf-8")
    if _SCRIPT_CLOSE.search(src):
        raise ValueError(
            "standalone.js contains '</script' and cannot be inlined in a <script> element"
        )
    return src


def to_html(view_or_list: ExportableView | Iterable[ExportableView], title: str | None = None) -> str:
    """Return a self-contained HTML page showing the view(s); works from ``file://``."""
    views = _as_views(view_or_list)
    bundles: dict[str, str] = {}
    entries = []
    for i, view in enumerate(views):
        bundle = view._bundle
        if bundle not in bundles:
            bundles[bundle] = read_bundle(bundle)
        entries.append({"target": f"ew-view-{i}", "bundle": bundle, "state": view.export_state()})
    standalone = _standalone_source()

    heading = "" if title is None else f'<h1 class="ew-page-title">{html.escape(title)}</h1>'
    if title is None:
        title = next((v.title for v in views if v.title), "") or "ecco_widgets"
    divs = "\n".join(f'<div class="ew-view" id="ew-view-{i}"></div>' for i in range(len(views)))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(_CSP)}">',
        '<meta name="generator" content="ecco_widgets">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_PAGE_CSS}</style>",
        "</head>",
        "<body>",
        heading,
        divs,
        f'<script type="application/json" id="ew-bundles">{json_for_script(bundles)}</script>',
        f'<script type="application/json" id="ew-views">{json_for_script(entries)}</script>',
        f'<script type="module">\n{standalone}\n</script>',
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def save_html(
    view_or_list: ExportableView | Iterable[ExportableView],
    path: str | os.PathLike[str],
    title: str | None = None,
) -> pathlib.Path:
    """Write the view(s) to ``path`` as one offline HTML page and return the path.

    ``view_or_list`` is a view or a list of views (shown one after the other).
    """
    out = pathlib.Path(path)
    if out.is_dir():
        raise ViewValueError(f"save_html: {out} is a folder; give a file name such as {out / 'page.html'}.")
    text = to_html(view_or_list, title=title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ViewValueError(f"save_html: cannot write {out}: {error.strerror or error}. Choose another path.") from None
    return out
