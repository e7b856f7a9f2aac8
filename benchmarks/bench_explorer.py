"""Explorer timing benchmark (not a test: prints numbers, asserts nothing). Issue 16's targets: a 1,000-token explorer
renders in under 300 ms and a hover updates it in under 16 ms; 8,000 tokens stay usable.

In Debian's chromium (Playwright, headless, offline), for an explorer with every panel (30 layers, top-5 predictions,
2 watched tokens, 8 factors, 8 top neurons, attention rows of 9 heads + their mean, saliency of 2 methods):
- render: ``performance.now()`` around ``render()``, and to the next frame (layout and paint included);
- hover: real mouse moves onto a different token each time; from the input event's timestamp to the panels' DOM
  update (a MutationObserver on the lens panel's heading), and to the next frame;
- the token elements in the DOM (the row is virtualised) and the payload of the offline export.

Run: ``python benchmarks/bench_explorer.py [--runs 5] [--hovers 60] [--sizes 1000,8000]``
"""

from __future__ import annotations

import argparse
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

from ecco_widgets.views import Explorer  # noqa: E402
from ecco_widgets.views.base import read_bundle  # noqa: E402
from ecco_widgets.views.export import json_for_script  # noqa: E402
from tools.chromium import CHROMIUM_ARGS, chromium_executable  # noqa: E402


def make_explorer(n: int, n_layers: int = 30, seed: int = 0) -> Explorer:
    """Synthetic arrays of realistic sizes: a chat of n tokens whose second half (the answer) is explained."""
    rng = np.random.default_rng(seed)
    h = n // 2
    targets = np.arange(h, min(n, h + 500))
    depth = (1 - np.arange(n_layers) / n_layers)[:, None]
    ranks = np.ceil(np.exp(rng.random((n_layers, n - 1)) * 10.8 * depth)).astype(np.int64)
    vocab = [f" w{i}" for i in range(5000)]
    att = rng.random((10, n, 8)).astype(np.float32)
    att /= att.sum(-1, keepdims=True)
    return Explorer(
        tokens=[f" tok{i}" for i in range(n)], n_input_tokens=h,
        turns=[{"role": "user", "start": 0, "stop": h}, {"role": "assistant", "start": h, "stop": n}],
        targets=targets, attributions={"ig": rng.random((len(targets), n)), "grad_x_input": rng.normal(size=(len(targets), n))},
        ranks=ranks, target_probs=1 / ranks, kl_to_final=rng.random(ranks.shape) * 5, first_layer=rng.integers(-1, n_layers, n - 1),
        topk_vocab=vocab, topk_index=rng.integers(0, len(vocab), size=(n_layers, n, 5)),
        topk_probs=np.sort(rng.random((n_layers, n, 5)) / 5, -1)[..., ::-1],
        watch_tokens=[" is", " are"], watch_ranks=rng.integers(1, 5000, size=(n_layers, n, 2)),
        factors=rng.random((8, n)), neuron_ids=rng.integers(0, 1536, size=(n, 8, 2)),
        neuron_values=np.sort(rng.random((n, 8)), -1)[:, ::-1], attention_keys=rng.integers(0, n, size=(10, n, 8)),
        attention_values=np.sort(att, -1)[..., ::-1], head_labels=["mean of 9 heads"] + [f"head {i}" for i in range(9)],
        attention_label="layer 29", selected_token=h)


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
const model = { get: (n) => state[n], set(n, v) { state[n] = v; (L.get("change:" + n) || []).forEach((f) => f()); },
  on(n, cb) { if (!L.has(n)) L.set(n, []); L.get(n).push(cb); }, off() {}, save_changes() {}, send() {} };
const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
const mod = await import(url);
const el = document.getElementById("host");
const t0 = performance.now();
mod.default.render({ model, el });
const t1 = performance.now();
await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
const t2 = performance.now();
window.__bench = { render_ms: t1 - t0, to_frame_ms: t2 - t0, tokens_in_dom: el.querySelectorAll("[data-token-index]").length };
window.__lat = [];
let pending = null, seen = null, consumed = -Infinity;
for (const t of ["pointerover", "pointermove", "mouseover", "mousemove"])
  window.addEventListener(t, (ev) => {
    if (pending == null && ev.timeStamp > consumed) { pending = ev.timeStamp; seen = performance.now(); }
  }, { capture: true });
const heading = el.querySelector('[data-panel="lens"] .ew-panel-title');
new MutationObserver(() => {
  if (pending == null) return;
  const start = pending, s2 = seen; pending = null; consumed = start;
  const now = performance.now();
  requestAnimationFrame(() => { window.__lat.push([now - start, performance.now() - start, now - s2]); });
}).observe(heading, { childList: true, subtree: true, characterData: true });
document.body.dataset.ewReady = "1";
"""


def _host_html(view) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body style='margin:8px'><div id='host'></div>"
        f"<script type='application/json' id='state'>{json_for_script(view.export_state())}</script>"
        f"<script type='application/json' id='bundle'>{json_for_script(read_bundle(view._bundle))}</script>"
        f"<script type='module'>{_HOST}</script></body></html>"
    )


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run(sizes: list[int], runs: int, hovers: int) -> None:
    from playwright.sync_api import sync_playwright

    chromium = chromium_executable()
    if chromium is None:
        print("chromium not found: no timings (apt-get install -y chromium)")
        return
    work = pathlib.Path(tempfile.mkdtemp(prefix="ew-bench-explorer-"))
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(work / "profile"), executable_path=chromium, headless=True,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                       else r.abort())
            for n in sizes:
                view = make_explorer(n)
                host = work / "host.html"
                host.write_text(_host_html(view), encoding="utf-8")
                render, frame = [], []
                for _ in range(runs):
                    page.goto(host.as_uri())
                    page.wait_for_function("() => document.body.dataset.ewReady === '1'", timeout=60_000)
                    b = page.evaluate("() => window.__bench")
                    render.append(b["render_ms"])
                    frame.append(b["to_frame_ms"])
                in_dom = b["tokens_in_dom"]
                boxes = page.evaluate("""() => { const row = document.querySelector('.ew-vrow').getBoundingClientRect();
                    return [...document.querySelectorAll('.ew-vrow [data-token-index]')]
                    .map(e => { const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2, r.height]; })
                    .filter(([x, y, h]) => h > 0 && y > row.top + 4 && y < row.bottom - 4); }""")
                rng = np.random.default_rng(0)
                order = rng.permutation(len(boxes))[:hovers]
                for i, j in enumerate(order):  # a different token each time
                    x, y, _ = boxes[int(j)]
                    page.mouse.move(x, y)
                    page.wait_for_function("(n) => window.__lat.length >= n", arg=i + 1, timeout=5000)
                lat = page.evaluate("() => window.__lat")
                parts = page.evaluate("() => document.querySelector('.ew-root').ewExplorer.timings")
                dom, paint, handler = ([x[i] for x in lat] for i in range(3))
                payload = len(view.to_html().encode())
                print(f"-- explorer, {n:,} tokens, every panel")
                print(f"   render() call         median {statistics.median(render):7.1f} ms   (min {min(render):.1f}, runs {runs})")
                print(f"   render -> next frame  median {statistics.median(frame):7.1f} ms   (target < 300 ms at 1,000 tokens)")
                print(f"   hover -> panels DOM   median {statistics.median(dom):7.2f} ms   p95 {_pct(dom, 0.95):.2f} ms (n={len(dom)})")
                print(f"   of which in the page  median {statistics.median(handler):7.2f} ms   p95 {_pct(handler, 0.95):.2f} ms")
                print(f"   hover -> next frame   median {statistics.median(paint):7.2f} ms   p95 {_pct(paint, 0.95):.2f} ms"
                      "   (target < 16 ms)")
                print("   last hover, per part: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))
                print(f"   token elements in the DOM: {in_dom:,} of {n:,};  offline page: {payload / 1e6:.1f} MB")
                view.close()
            ctx.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="page loads per size for the render timings")
    ap.add_argument("--hovers", type=int, default=60, help="mouse moves for the hover latency")
    ap.add_argument("--sizes", default="1000,8000", help="token counts, comma-separated")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    print("== chromium (headless, software rendering) ==")
    run([int(s) for s in args.sizes.split(",")], args.runs, args.hovers)
    print(f"(benchmark took {time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
