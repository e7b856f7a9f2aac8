"""Debian's Chromium, headless and offline: the one set of flags for browser tests, benchmarks and screenshots.

>>> "--headless" in CHROMIUM_ARGS and "--disable-background-networking" in CHROMIUM_ARGS
True
"""

from __future__ import annotations

import shutil

# Flags that work on this project's machines (no GPU, no sandbox, no network): never a downloaded browser.
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


def chromium_executable() -> str | None:
    """Path of the system Chromium (Debian's ``chromium``), or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")
