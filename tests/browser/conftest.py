"""Fixtures of the browser tests: ``probe`` (a page with network blocked and console / request recording) and
``artifacts``. The browser itself (``playwright_sync``, ``browser_context``: Debian's chromium, never a downloaded one)
comes from tests/conftest.py, shared with the tests outside this folder. Every test in this folder is marked
``browser``.  All network is blocked: any request that is not
``file:``/``data:``/``blob:`` is aborted and recorded, and tests assert none happened.
"""

from __future__ import annotations

import pathlib

import pytest

from ._harness import ARTIFACTS, Probe


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture()
def probe(browser_context):
    """A fresh page with network blocked and console/dialog/request recording."""
    page = browser_context.new_page()
    p = Probe(page)
    try:
        yield p
    finally:
        page.close()


@pytest.fixture(scope="session")
def artifacts() -> pathlib.Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
