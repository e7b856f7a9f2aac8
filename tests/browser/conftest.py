"""Playwright (sync API) fixtures driving Debian's chromium, offline.

Never downloads a browser: uses ``shutil.which("chromium")``.  Every test in this
folder is marked ``browser``.  All network is blocked: any request that is not
``file:``/``data:``/``blob:`` is aborted and recorded, and tests assert none happened.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import pytest

from tools.chromium import CHROMIUM_ARGS, chromium_executable

from ._harness import ARTIFACTS, Probe

CHROMIUM = chromium_executable()


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def playwright_sync():
    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install -y chromium; `make test` does it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a missing browser is a failure, never a silent skip
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        pytest.skip("playwright is not installed")
    with sync_playwright() as p:
        yield p


def launch_context(playwright, user_data_dir: str, **kwargs):
    """A persistent chromium context with a fresh profile (Debian's chromium, headless)."""
    return playwright.chromium.launch_persistent_context(
        user_data_dir,
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        device_scale_factor=1,
        **kwargs,
    )


@pytest.fixture(scope="session")
def browser_context(playwright_sync):
    profile = tempfile.mkdtemp(prefix="ew-chromium-profile-")
    ctx = launch_context(playwright_sync, profile)
    try:
        yield ctx
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)


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
