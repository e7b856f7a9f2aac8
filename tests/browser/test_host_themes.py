"""The theme each notebook host signals, one signal at a time, switched live after the view rendered (js/src/lib/theme.js).

The page's own preference (prefers-color-scheme) is set to the opposite of what the signal says, so a view that
ignored the signal would show the wrong theme.
"""

from __future__ import annotations

import pytest

from ._data import build
from ecco_widgets.views import RankGrid

SIGNALS = {
    # name: (script that sets the signal, theme it means)
    "jupyterlab-dark": ("document.body.dataset.jpThemeLight = 'false'", "dark"),
    "jupyterlab-light": ("document.body.dataset.jpThemeLight = 'true'", "light"),
    "vscode-kind-dark": ("document.body.dataset.vscodeThemeKind = 'vscode-dark'", "dark"),
    "vscode-kind-hc-light": ("document.body.dataset.vscodeThemeKind = 'vscode-high-contrast-light'", "light"),
    "vscode-class-dark": ("document.body.classList.add('vscode-dark')", "dark"),
    "vscode-class-hc": ("document.body.classList.add('vscode-high-contrast')", "dark"),
    "vscode-class-hc-light": ("document.body.classList.add('vscode-high-contrast', 'vscode-high-contrast-light')", "light"),
    "vscode-editor-background-dark": (
        "document.documentElement.style.setProperty('--vscode-editor-background', '#1e1e1e')", "dark"),
    "vscode-editor-background-light": (
        "document.documentElement.style.setProperty('--vscode-editor-background', '#fffffe')", "light"),
    "colab-dark": ("document.documentElement.setAttribute('theme', 'dark')", "dark"),
    "colab-light": ("document.documentElement.setAttribute('theme', 'light')", "light"),
    "marimo-dark": ("document.body.classList.add('dark', 'dark-theme')", "dark"),
    # Colab's widget manager defines Jupyter's light variables whatever Colab's theme: the frame's theme wins
    "colab-dark-with-widget-css": (
        "document.documentElement.style.setProperty('--jp-layout-color0', 'white');"
        "document.documentElement.setAttribute('theme', 'dark')", "dark"),
}


@pytest.mark.parametrize("signal", list(SIGNALS))
def test_auto_theme_follows_the_host_signal(signal, probe, tmp_path):
    script, expected = SIGNALS[signal]
    page = probe.page
    page.emulate_media(color_scheme="light" if expected == "dark" else "dark")
    probe.open_host(build(RankGrid), tmp_path / "host.html")
    opposite = "light" if expected == "dark" else "dark"
    assert page.get_attribute("#host .ew-root", "data-ew-theme") == opposite
    page.evaluate(f"() => {{ {script}; }}")
    page.wait_for_function("(t) => document.querySelector('#host .ew-root').dataset.ewTheme === t", arg=expected)
    # --jp-* colours only where the body says which Jupyter theme they are
    uses_jp = page.evaluate("() => document.querySelector('#host .ew-root').classList.contains('ew-jp')")
    assert uses_jp is False
    probe.assert_clean()


def test_prefers_color_scheme_when_no_host_says(probe, tmp_path):
    page = probe.page
    page.emulate_media(color_scheme="light")
    probe.open_host(build(RankGrid), tmp_path / "host.html")
    assert page.get_attribute("#host .ew-root", "data-ew-theme") == "light"
    page.emulate_media(color_scheme="dark")
    page.wait_for_function("() => document.querySelector('#host .ew-root').dataset.ewTheme === 'dark'")
    probe.assert_clean()
