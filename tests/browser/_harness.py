"""Helpers for the browser tests: a page probe, the export route and a minimal host page."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from ecco_widgets.views.base import read_bundle
from ecco_widgets.views.export import json_for_script, save_html

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"

_LOCAL = ("file:", "data:", "blob:", "about:", "chrome-error:")


class Probe:
    """Wraps a page: blocks network, records requests, console errors, page errors, dialogs."""

    def __init__(self, page, allow: tuple[str, ...] = ()) -> None:
        self.page = page
        self.allow = allow
        self.network: list[str] = []  # every non-local request attempted
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        page.set_default_timeout(10_000)
        page.route("**/*", self._route)
        page.on("request", self._on_request)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("dialog", self._on_dialog)

    def _is_local(self, url: str) -> bool:
        return url.startswith(_LOCAL) or any(url.startswith(a) for a in self.allow)

    def _route(self, route) -> None:
        url = route.request.url
        if self._is_local(url):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    def _on_request(self, request) -> None:
        if not self._is_local(request.url):
            self.network.append(request.url)

    def _on_console(self, msg) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        try:
            dialog.dismiss()
        except Exception:  # pragma: no cover - page closing
            pass

    def assert_clean(self) -> None:
        assert not self.dialogs, f"dialogs fired: {self.dialogs}"
        assert not self.page_errors, f"page errors: {self.page_errors}"
        assert not self.console_errors, f"console errors: {self.console_errors}"
        assert not self.network, f"network requests attempted: {self.network}"

    # -- loading ---------------------------------------------------------------
    def wait_ready(self, timeout: float = 20_000) -> None:
        self.page.wait_for_function(
            "() => document.body && (document.body.dataset.ewReady === '1' || document.body.dataset.ewError)",
            timeout=timeout,
        )
        err = self.page.evaluate("() => document.body.dataset.ewError || null")
        assert err is None, f"view failed to render: {err}"

    def open_export(self, views, path: pathlib.Path, title: str | None = None) -> pathlib.Path:
        out = save_html(views, path, title=title)
        self.page.goto(out.resolve().as_uri())
        self.wait_ready()
        return out

    def open_host(self, view, path: pathlib.Path) -> pathlib.Path:
        path.write_text(host_page_html(view), encoding="utf-8")
        self.page.goto(path.resolve().as_uri())
        self.wait_ready()
        return path

    def sets(self) -> list[list[Any]]:
        """``[name, value]`` pairs the bundle wrote through the host shim's ``model.set``."""
        return self.page.evaluate("() => window.__ewSets || []")

    def saves(self) -> int:
        return self.page.evaluate("() => window.__ewSaves || 0")

    def screenshot(self, name: str) -> pathlib.Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        out = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.page.screenshot(path=str(out), full_page=True)
        return out


# A hand-written model shim, written independently of standalone.js: arrays are given
# as DataViews with a non-zero byteOffset (as ipywidgets may hand them over).
_HOST_JS = r"""
const state = JSON.parse(document.getElementById("state").textContent);
const source = JSON.parse(document.getElementById("bundle").textContent);
function toDataView(field) {
  const bin = atob(field.base64);
  const pad = 24;  // deliberately misaligned start inside a bigger buffer
  const buf = new ArrayBuffer(bin.length + pad + 8);
  const bytes = new Uint8Array(buf, pad + 3, bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return { view: new DataView(buf, pad + 3, bin.length), dtype: field.dtype, shape: field.shape };
}
for (const [k, v] of Object.entries(state)) {
  if (v && typeof v === "object" && !Array.isArray(v) && "base64" in v) state[k] = toDataView(v);
}
window.__ewSets = [];
window.__ewSaves = 0;
const listeners = new Map();
const model = {
  get(name) { return state[name]; },
  set(name, value) {
    state[name] = value;
    window.__ewSets.push([name, JSON.parse(JSON.stringify(value))]);
    for (const cb of listeners.get("change:" + name) || []) cb();
    for (const cb of listeners.get("change") || []) cb();
  },
  on(name, cb) { if (!listeners.has(name)) listeners.set(name, []); listeners.get(name).push(cb); },
  off(name, cb) {
    if (!name) { listeners.clear(); return; }
    if (!cb) { listeners.delete(name); return; }
    listeners.set(name, (listeners.get(name) || []).filter((f) => f !== cb));
  },
  save_changes() { window.__ewSaves += 1; },
  send() {},
};
window.__ewModel = model;
window.__ewSetFromPython = (name, value) => {  // simulate a kernel-side change
  state[name] = value;
  for (const cb of listeners.get("change:" + name) || []) cb();
};
try {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  const mod = await import(url);
  const widget = mod.default;
  const el = document.getElementById("host");
  const maybe = widget.render({ model, el });
  if (maybe && typeof maybe.then === "function") await maybe;
  document.body.dataset.ewReady = "1";
} catch (e) {
  document.body.dataset.ewError = String(e && e.stack || e);
  throw e;
}
"""


def host_page_html(view) -> str:
    """A minimal page that imports the view's bundle with a hand-written model shim."""
    state = view.export_state()
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>host</title></head>\n"
        "<body style='margin:16px;font-family:sans-serif'>\n"
        "<div id='host' class='jp-OutputArea-output'></div>\n"
        f"<script type='application/json' id='state'>{json_for_script(state)}</script>\n"
        f"<script type='application/json' id='bundle'>{json_for_script(read_bundle(view._bundle))}</script>\n"
        f"<script type='module'>{_HOST_JS}</script>\n"
        "</body></html>\n"
    )


def bg(page, selector_or_handle) -> str:
    """Computed background colour of an element (selector or handle)."""
    handle = page.query_selector(selector_or_handle) if isinstance(selector_or_handle, str) else selector_or_handle
    assert handle is not None, selector_or_handle
    return handle.evaluate("e => getComputedStyle(e).backgroundColor")


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
