"""mkdocs hooks for the docs site: pages made from files outside ``docs/`` at build time.

- ``contributing.md`` from the repository's CONTRIBUTING.md (one source, no copy in git);
- ``notebooks/index.md`` and one page per walkthrough notebook, from its executed copy
  (:mod:`tools.notebook_cache`: the copy the notebook tests left, else the notebook is run now). Markdown cells stay
  Markdown, code cells become Python blocks, and each ecco_widgets view is its kernel-free copy (the offline page in
  an iframe, ``views/hosts.py``): live, and with no network. ``ECCO_WIDGETS_DOCS_NOTEBOOKS=0`` skips running them
  (a quick check of the other pages).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import notebook_cache  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_LINK = re.compile(r"\]\((?:\.\./notebooks/|notebooks/)?(\d\d_\w+)\.ipynb\)")


def _fence(text: str, lang: str = "") -> str:
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}\n"


def _output_markdown(output: dict) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return _fence(output.get("text", ""), "text")
    if kind == "error":
        return _fence("\n".join([f"{output.get('ename')}: {output.get('evalue')}"]), "text")
    data = output.get("data", {})
    if WIDGET_VIEW in data and "text/html" in data:
        return f'<div class="ew-notebook-view">\n{data["text/html"]}\n</div>\n'
    if "image/png" in data:
        return f'<img alt="figure" src="data:image/png;base64,{data["image/png"].strip()}">\n'
    if "text/html" in data:
        return f'<div class="ew-notebook-html">\n{data["text/html"]}\n</div>\n'
    if "text/plain" in data:
        return _fence(data["text/plain"], "text")
    return ""


def notebook_markdown(nb) -> str:
    """One Markdown page for an executed notebook (nbformat v4)."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(NOTEBOOK_LINK.sub(r"](\1.md)", cell.source) + "\n")
        elif cell.cell_type == "code" and cell.source.strip():
            parts.append(_fence(cell.source, "python"))
            parts.extend(_output_markdown(o) for o in cell.outputs)
    return "\n".join(p for p in parts if p)


def _index_markdown() -> str:
    readme = (notebook_cache.NOTEBOOK_DIR / "README.md").read_text()
    body = readme.split("\n", 1)[1]
    body = NOTEBOOK_LINK.sub(r"](\1.md)", body)
    body = re.sub(r"\]\(((?:\d\d_\w+)\.ipynb)\)", r"](\1)", body)
    return ("# Notebooks\n\nEach page below is the notebook run top to bottom on the bundled model when this site was "
            "built; its views are live (hover them) and need no kernel and no network.\n" + body)


def on_files(files, config):
    """Add the generated pages to the site's files."""
    contributing = (ROOT / "CONTRIBUTING.md").read_text().replace("](docs/", "](")
    files.append(File.generated(config, "contributing.md", content=contributing))
    files.append(File.generated(config, "notebooks/index.md", content=_index_markdown()))
    run = os.environ.get("ECCO_WIDGETS_DOCS_NOTEBOOKS", "1") != "0"  # 0: a quick build, the notebooks not run
    for path in sorted(notebook_cache.NOTEBOOK_DIR.glob("*.ipynb")):
        if run:
            nb = notebook_cache.executed(path)
            nb.metadata.pop("widgets", None)
            page = notebook_markdown(nb)
        else:
            page = f"# {path.stem}\n\nNot run in this build (ECCO_WIDGETS_DOCS_NOTEBOOKS=0).\n"
        files.append(File.generated(config, f"notebooks/{path.stem}.md", content=page))
    return files

