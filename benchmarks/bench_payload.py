"""What a view sends to the front end, by host: binary buffers (JupyterLab, Notebook 7, VS Code, marimo) against
base64 JSON (a Colab kernel, and any view whose front end lost its buffers: ``ecco_widgets/views/hosts.py``).

For a 30 layers x 1,000 tokens RankGrid (top-5 predictions per cell) and the 8,000-token Explorer of
``bench_explorer.py``: the bytes of the comm_open message (JSON text + binary buffers) each way, and the time to
build it (``get_state`` + ipywidgets' buffer split + ``json.dumps``, median of 5), as a ratio measured in one run.
Not a test: prints numbers, asserts nothing.

Run: ``python benchmarks/bench_payload.py``
"""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ipywidgets.widgets.widget import _remove_buffers  # noqa: E402

from _timing import median_seconds  # noqa: E402
from bench_explorer import make_explorer  # noqa: E402
from bench_widgets import make_grid  # noqa: E402


def comm_open_bytes(view, wire: str) -> tuple[int, int]:
    """(JSON bytes, binary buffer bytes) of the view's comm_open message with its arrays sent ``wire``."""
    view._ew_wire = wire
    state, buffer_paths, buffers = _remove_buffers(view.get_state())
    text = json.dumps({"state": state, "buffer_paths": buffer_paths}, separators=(",", ":"))
    return len(text.encode()), sum(memoryview(b).nbytes for b in buffers)


def main() -> None:
    views = {"RankGrid 30 x 1,000 (top-5)": make_grid(n_layers=30, n_tokens=1000, topk=5),
             "Explorer 8,000 tokens": make_explorer(8000)}
    print(f"{'view':30s} {'wire':7s} {'JSON':>11s} {'buffers':>11s} {'total':>11s} {'build ms':>9s}")
    for name, view in views.items():
        totals, times = {}, {}
        for wire in ("binary", "base64"):
            text, binary = comm_open_bytes(view, wire)
            totals[wire] = text + binary
            times[wire] = median_seconds(lambda: comm_open_bytes(view, wire), repeats=5) * 1e3
            print(f"{name:30s} {wire:7s} {text:11,d} {binary:11,d} {text + binary:11,d} {times[wire]:9.1f}")
        view._ew_wire = "binary"
        print(f"{'':30s} base64 / binary: {totals['base64'] / totals['binary']:.2f}x bytes, "
              f"{times['base64'] / times['binary']:.2f}x build time")


if __name__ == "__main__":
    main()
