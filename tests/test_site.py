"""The documentation site (issue 30): built with mkdocs --strict, and read in Chromium with the network blocked.

The build runs every walkthrough notebook (or takes the copies ``tests/test_notebooks.py`` just ran, keyed by the
notebook and the package's files: ``tools/notebook_cache.py``), so the notebook pages show live views. A warning, a
broken link or an unresolved API reference fails the build; the second test shows that it does.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
pytest.importorskip("mkdocs")
pytest.importorskip("material")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    done = _build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stderr[-4000:]
    return site


def test_every_page_of_the_nav_is_built(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav):
        for item in nav:
            if isinstance(item, str):
                yield item
            else:
                for value in item.values():
                    yield from (pages(value) if isinstance(value, list) else [value])

    built = [p for p in pages(config["nav"])]
    assert len(built) >= 25
    missing = [p for p in built if not (site / p.replace(".md", ".html")).exists()]
    assert not missing, missing
    # the API reference is generated from the docstrings: a method's own words are on the page
    models = (site / "reference" / "models.html").read_text()
    assert 'id="ecco_widgets.models.causal_lm.LanguageModel.generate"' in models
    assert "A LanguageModel from a hub id" in models
    views = (site / "reference" / "views.html").read_text()
    assert all(f'id="ecco_widgets.views.{m}"' in views for m in ("rank_grid.RankGrid", "explorer.Explorer"))


def test_a_broken_link_fails_the_build(tmp_path):
    """--strict is what makes CI fail on a broken link: the same site with one bad link does not build."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "index.md").write_text((docs / "index.md").read_text() + "\nSee [the missing page](no_such_page.md).\n")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config.update(docs_dir=str(docs), hooks=[str(ROOT / "tools" / "mkdocs_hooks.py")])
    config["plugins"] = [p for p in config["plugins"] if not isinstance(p, dict)]  # no API pages needed here
    config["nav"] = [item for item in config["nav"] if "API" not in item]
    config["exclude_docs"] = config.get("exclude_docs", "") + "reference/\n"
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    done = _build(path, tmp_path / "site")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "no_such_page.md" in done.stderr


@pytest.fixture(scope="module")
def served(site):
    """The built site on an HTTP server on 127.0.0.1 (search needs http: it fetches its index)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = socketserver.TCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_the_site_reads_offline_with_live_views_and_search(served, tmp_path, playwright_sync):
    from tools.chromium import CHROMIUM_ARGS, chromium_executable

    outside, errors, found = [], [], {}
    browser = playwright_sync.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r):
            if r.request.url.startswith((served, "data:", "blob:", "about:")):
                return r.continue_()
            outside.append(r.request.url)
            return r.abort("blockedbyclient")

        page.route("**/*", route)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        for name in ["index.html", "saliency.html", "reference/results.html", "coming_from_ecco.html"]:
            page.goto(f"{served}/{name}")
            page.locator("article h1").first.wait_for(timeout=10_000)
        # a notebook page: its views are their kernel-free copies, and they answer a hover
        page.goto(f"{served}/notebooks/01_quickstart.html")
        frames = page.locator("iframe.ew-saved-view")
        found["iframes"] = frames.count()
        grid = page.frame_locator("iframe.ew-saved-view").nth(0)
        grid.locator(".ew-root").first.wait_for(timeout=20_000)
        found["view"] = grid.locator(".ew-root").first.get_attribute("data-ew-view")
        grid.locator('.ew-cell[data-r="2"][data-c="3"]').hover()
        grid.locator(".ew-tooltip").first.wait_for(state="visible", timeout=10_000)
        found["tooltip"] = grid.locator(".ew-tooltip").first.inner_text()
        # search, from the site's own index
        page.goto(f"{served}/index.html")
        page.locator("input.md-search__input").click()
        page.locator("input.md-search__input").fill("patching")
        page.locator(".md-search-result__item").first.wait_for(timeout=15_000)
        found["results"] = page.locator(".md-search-result__item").count()
        page.screenshot(path=str(tmp_path / "search.png"))
    finally:
        browser.close()
    assert not outside, outside  # no CDN, no web font, nothing from outside the site
    assert not errors, errors
    assert found["iframes"] == 3 and found["view"] == "rank_grid", found
    assert found["tooltip"].strip() and found["results"] >= 1, found
