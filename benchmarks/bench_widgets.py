"""Widget payload and front-end timing benchmark (not a test: prints numbers, asserts nothing).

1. Payload of a 48 layers x 1,000 tokens RankGrid: binary buffers (what the views send)
   vs. the JSON lists they replace, with and without the top-k tooltip arrays.
2. In Debian's chromium (Playwright, headless, offline): time to first render
   (``performance.now()`` around ``render()`` and to the next frame) and hover -> tooltip latency
   (from the input event's timestamp to the tooltip's DOM update, and to the next frame; and the
   part spent in the page, from the first event listener to the tooltip update).

Run: ``python benchmarks/bench_widgets.py [--runs 5] [--hovers 60] [--no-browser]``
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecco_widgets.views import RankGrid  # noqa: E402
from ecco_widgets.views.base import read_bundle  # noqa: E402
from ecco_widgets.views.export import json_for_script, save_html  # noqa: E402
from tools.chromium import CHROMIUM_ARGS, chromium_executable  # noqa: E402



def make_grid(n_layers: int = 48, n_tokens: int = 1000, topk: int = 0, seed: int = 0) -> RankGrid:
    rng = np.random.default_rng(seed)
    toks = [f" tok{i}" for i in range(n_tokens)]
    depth = (1 - np.arange(n_layers) / n_layers)[:, None]
    # realistic spread of ranks: 1 .. ~49,000 (vocab-sized), smaller in later layers
    ranks = np.ceil(np.exp(rng.random((n_layers, n_tokens - 1)) * 10.8 * depth)).astype(np.int64)
    kw = {}
    if topk:
        vocab = [f" w{i}" for i in range(5000)]
        kw = dict(
            topk_vocab=vocab,
            topk_index=rng.integers(0, len(vocab), size=(n_layers, n_tokens - 1, topk)),
            topk_probs=np.sort(rng.random((n_layers, n_tokens - 1, topk)).astype(np.float32) / topk, -1)[..., ::-1],
        )
    return RankGrid(tokens=toks, ranks=ranks, n_input_tokens=n_tokens // 2, **kw)


# --------------------------------------------------------------------------- payload


def payload_sizes(view: RankGrid) -> dict[str, int]:
    """Bytes on the comm: binary (JSON state + raw buffers) vs. arrays as JSON lists."""
    from ipywidgets.widgets.widget import _remove_buffers

    names = view.view_trait_names()
    state = {k: v for k, v in view.get_state().items() if k in names}
    stripped, _paths, buffers = _remove_buffers(state)
    json_part = len(json.dumps(stripped, separators=(",", ":")).encode())
    binary = json_part + sum(len(memoryview(b).cast("B")) for b in buffers)

    as_lists = {}
    for k in names:
        v = getattr(view, k)
        as_lists[k] = v.tolist() if isinstance(v, np.ndarray) else v
    json_lists = len(json.dumps(as_lists, separators=(",", ":")).encode())

    array_bytes = sum(getattr(view, k).nbytes for k in names if isinstance(getattr(view, k), np.ndarray))
    list_bytes = sum(
        len(json.dumps(getattr(view, k).tolist(), separators=(",", ":")).encode())
        for k in names
        if isinstance(getattr(view, k), np.ndarray)
    )
    # What a contract change would give: integer arrays as uint16 when every value fits.
    narrowed = 0
    for k in names:
        v = getattr(view, k)
        if isinstance(v, np.ndarray):
            fits = v.dtype.kind in "iu" and (v.size == 0 or (v.min() >= 0 and v.max() < 65536))
            narrowed += v.size * 2 if fits else v.nbytes
    export = len(view.to_html().encode())
    return {
        "arrays_uint16_if_fits": narrowed,
        "binary_total": binary,
        "json_lists_total": json_lists,
        "arrays_binary": array_bytes,
        "arrays_json_lists": list_bytes,
        "export_html": export,
    }


def report_payload() -> None:
    print("== payload: RankGrid 48 layers x 1,000 tokens ==")
    for k in (0, 5):
        g = make_grid(topk=k)
        s = payload_sizes(g)
        label = "ranks only" if not k else f"ranks + top-{k} tooltip arrays"
        print(f"-- {label}")
        print(f"   arrays:  binary {s['arrays_binary']:>12,d} B   JSON lists {s['arrays_json_lists']:>12,d} B"
              f"   ratio {s['arrays_json_lists'] / s['arrays_binary']:.2f}x")
        print(f"   message: binary {s['binary_total']:>12,d} B   JSON lists {s['json_lists_total']:>12,d} B"
              f"   ratio {s['json_lists_total'] / s['binary_total']:.2f}x  (target >= 3x)")
        print(f"   offline export (base64 + bundles): {s['export_html']:,d} B")
        g.close()


# --------------------------------------------------------------------------- browser timing

_HOST = r"""
const state = JSON.parse(document.getElementById("state").textContent);
const source = JSON.parse(document.getElementById("bundle").textContent);
for (const [k, v] of Object.entries(state)) {
  if (v && typeof v === "object" && !Array.isArray(v) && "base64" in v) {
    const bin = atob(v.base64); const u = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
    state[k] = { view: new DataView(u.buffer), dtype: v.dtype, shape: v.shape };
  }
}
const L = new Map();
const model = { get: (n) => state[n], set(n, v) { state[n] = v; }, on(n, cb) { if (!L.has(n)) L.set(n, []); L.get(n).push(cb); },
  off() {}, save_changes() {}, send() {} };
const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
const mod = await import(url);
const el = document.getElementById("host");
const t0 = performance.now();
mod.default.render({ model, el });
const t1 = performance.now();
await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
const t2 = performance.now();
window.__bench = { render_ms: t1 - t0, to_frame_ms: t2 - t0 };
// hover latency: mousemove timestamp -> tooltip DOM update (and -> next frame)
const tip = el.querySelector(".ew-tooltip");
window.__lat = [];
let pending = null;
// (DOM grids react to mouseover, which fires before mousemove: take the first input event)
let seen = null;  // performance.now() when the first event reached the page (handler cost = mutation - seen)
// the trailing events of a move that already updated the tooltip (e.g. mousemove after mouseover) carry the
// same or an earlier timestamp: ignore them, or the next hover would be timed from the previous move
let consumed = -Infinity;
for (const t of ["pointerover", "pointermove", "mouseover", "mousemove"])
  window.addEventListener(t, (ev) => {
    if (pending == null && ev.timeStamp > consumed) { pending = ev.timeStamp; seen = performance.now(); }
  }, { capture: true });
new MutationObserver(() => {
  if (pending == null) return;
  const start = pending; const s2 = seen; pending = null; consumed = start;
  const now = performance.now();
  const dom = now - start;
  const handler = now - s2;
  requestAnimationFrame(() => { window.__lat.push([dom, performance.now() - start, handler]); });
}).observe(tip, { childList: true, subtree: true, characterData: true, attributes: true });
document.body.dataset.ewReady = "1";
"""


def _host_html(view) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body style='margin:8px'>"
        "<div id='host'></div>"
        f"<script type='application/json' id='state'>{json_for_script(view.export_state())}</script>"
        f"<script type='application/json' id='bundle'>{json_for_script(read_bundle(view._bundle))}</script>"
        f"<script type='module'>{_HOST}</script></body></html>"
    )


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def browser_timings(runs: int, hovers: int) -> None:
    from playwright.sync_api import sync_playwright

    chromium = chromium_executable()
    if chromium is None:
        print("chromium not found: skipping browser timings (apt-get install -y chromium)")
        return
    work = pathlib.Path(tempfile.mkdtemp(prefix="ew-bench-"))
    cases = [
        ("48 x 1,000 (canvas), top-5 tooltip", make_grid(48, 1000, topk=5)),
        ("12 x 300 (DOM cells), top-5 tooltip", make_grid(12, 301, topk=5)),
        ("6 x 100 (DOM cells), top-5 tooltip", make_grid(6, 101, topk=5)),
    ]
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(work / "profile"), executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            page = ctx.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                       else r.abort())
            for label, grid in cases:
                host = work / "host.html"
                host.write_text(_host_html(grid), encoding="utf-8")
                export = save_html(grid, work / "export.html")
                render, frame, ready = [], [], []
                for _ in range(runs):
                    page.goto(host.as_uri())
                    page.wait_for_function("() => document.body.dataset.ewReady === '1'")
                    b = page.evaluate("() => window.__bench")
                    render.append(b["render_ms"])
                    frame.append(b["to_frame_ms"])
                    page.goto(export.as_uri())
                    page.wait_for_function("() => document.body.dataset.ewReady === '1'", timeout=60_000)
                    ready.append(page.evaluate("() => performance.now()"))
                # hover latency in the host page
                page.goto(host.as_uri())
                page.wait_for_function("() => document.body.dataset.ewReady === '1'")
                target = page.query_selector(".ew-grid canvas") or page.query_selector(".ew-grid")
                box = target.bounding_box()
                L, P = grid.ranks.shape
                cw, ch = box["width"] / P, box["height"] / L
                rng = np.random.default_rng(0)
                vis_cols = max(1, int(min(box["width"], 1300 - box["x"]) / cw))
                cells = set()
                while len(cells) < hovers:
                    cells.add((int(rng.integers(0, L)), int(rng.integers(0, vis_cols))))
                for i, (r, c) in enumerate(cells):  # a different cell each time
                    page.mouse.move(box["x"] + (c + 0.5) * cw, box["y"] + (r + 0.5) * ch)
                    page.wait_for_function("(n) => window.__lat.length >= n", arg=i + 1, timeout=5000)
                lat = page.evaluate("() => window.__lat")
                dom = [x[0] for x in lat]
                paint = [x[1] for x in lat]
                handler = [x[2] for x in lat]
                print(f"-- {label}")
                print(f"   render() call         median {statistics.median(render):7.1f} ms   (min {min(render):.1f}, runs {runs})")
                print(f"   render -> next frame  median {statistics.median(frame):7.1f} ms")
                print(f"   export page ready     median {statistics.median(ready):7.1f} ms after navigation start")
                print(f"   hover -> tooltip DOM  median {statistics.median(dom):7.2f} ms   p95 {_pct(dom, 0.95):.2f} ms"
                      f"   (n={len(dom)})")
                print(f"   of which in the page  median {statistics.median(handler):7.2f} ms   p95 {_pct(handler, 0.95):.2f} ms"
                      "   (first event handler -> tooltip DOM; the rest is chromium's input pipeline)")
                print(f"   hover -> next frame   median {statistics.median(paint):7.2f} ms   p95 {_pct(paint, 0.95):.2f} ms")
                grid.close()
            ctx.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="page loads per case for render timings")
    ap.add_argument("--hovers", type=int, default=60, help="mouse moves for the hover latency")
    ap.add_argument("--no-browser", action="store_true", help="payload sizes only")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    report_payload()
    if not args.no_browser:
        print("== chromium (headless, software rendering) ==")
        browser_timings(args.runs, args.hovers)
    print(f"(benchmark took {time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
