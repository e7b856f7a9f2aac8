"""A kernel's widget side without a kernel: the comm messages ipywidgets itself sends for a view, as JSON lines.

Run as ``python tests/browser/_kernel_bridge.py`` with the interpreter of the environment under test (ipywidgets 8 in
``.venv``, 7.7.1 in ``.venv-ipyw7``). ipywidgets opens its comms through ``comm.create_comm`` (8) or
``ipykernel.comm.Comm`` (7); both are replaced by a recorder, so what comes out is exactly what the widget code of
that version sends (``comm_open`` data and binary buffers, then ``comm_msg`` replies), and messages from the front
end go back through ipywidgets' own ``_handle_msg``.

Requests, one JSON object a line on stdin; one JSON answer a line on stdout:

- ``{"op": "open", "view": "RankGrid", "colab": false}``: builds the view of ``tests/browser/_data.py``;
  answers ``{"opens": [{comm_id, data, buffers}], "model_id", "mime": [...], "versions": {...}}`` (buffers base64).
  ``colab`` imports a stand-in ``google.colab.output`` first, as a Colab kernel has it.
- ``{"op": "msg", "comm_id", "data", "buffers": [base64]}``: answers ``{"sent": [{comm_id, data, buffers}]}``.
"""

from __future__ import annotations

import base64
import json
import pathlib
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import ipywidgets  # noqa: E402
from ipywidgets.widgets import widget as widget_module  # noqa: E402

_COMMS: dict[str, "RecordingComm"] = {}
_OPENS: list[dict] = []
_SENT: list[dict] = []
_ENABLED: list[str] = []


def _b64(buffers) -> list[str]:
    return [base64.b64encode(bytes(memoryview(b).cast("B"))).decode("ascii") for b in buffers or []]


class RecordingComm:
    """Stands in for a kernel comm: records what ipywidgets opens and sends; feeds it the front end's messages."""

    kernel = True  # ipywidgets sends only while its comm has a kernel

    def __init__(self, target_name="jupyter.widget", data=None, metadata=None, buffers=None, comm_id=None, **_):
        import uuid

        self.comm_id = comm_id or uuid.uuid4().hex
        self.target_name = target_name
        self._handlers = []
        _COMMS[self.comm_id] = self
        _OPENS.append({"comm_id": self.comm_id, "data": data, "buffers": _b64(buffers)})

    def send(self, data=None, metadata=None, buffers=None):
        _SENT.append({"comm_id": self.comm_id, "data": data, "buffers": _b64(buffers)})

    def on_msg(self, callback):
        self._handlers.append(callback)

    def on_close(self, callback):
        pass

    def close(self, *args, **kwargs):
        pass

    def handle_msg(self, msg):
        for handler in self._handlers:
            handler(msg)


if hasattr(widget_module, "comm") and hasattr(widget_module.comm, "create_comm"):  # ipywidgets 8
    widget_module.comm.create_comm = RecordingComm
else:  # ipywidgets 7: `from ipykernel.comm import Comm` in widget.py, and a `comm` trait of that class
    widget_module.Comm = RecordingComm
    widget_module.Widget.comm.klass = RecordingComm


def _pretend_colab() -> None:
    colab = types.ModuleType("google.colab")
    output = types.ModuleType("google.colab.output")
    # colabtools' google/colab/output/_widgets.py: enable_custom_widget_manager() records the manager's URL
    output._widgets = types.SimpleNamespace(_installed_url=None)

    def enable_custom_widget_manager(*args, **kwargs):
        _ENABLED.append("enable_custom_widget_manager")
        output._widgets._installed_url = "https://colab.test/manager.dev.js"

    output.enable_custom_widget_manager = enable_custom_widget_manager
    colab.output = output
    google = sys.modules.setdefault("google", types.ModuleType("google"))
    google.colab = colab
    sys.modules["google.colab"] = colab
    sys.modules["google.colab.output"] = output


def _open(request: dict) -> dict:
    if request.get("colab"):
        _pretend_colab()
    else:
        for name in ("google.colab", "google.colab.output"):
            sys.modules.pop(name, None)
    from browser._data import build  # imports ecco_widgets (after the recorder is in place)
    from ecco_widgets import views

    _OPENS.clear()
    view = build(getattr(views, request["view"]), title=request.get("title", ""))
    _VIEWS[view.model_id] = view
    data, _ = view._repr_mimebundle_()
    import anywidget

    return {"opens": list(_OPENS), "model_id": view.model_id, "mime": sorted(data),
            "module_version": view._model_module_version, "colab_manager_enabled": list(_ENABLED),
            "versions": {"ipywidgets": ipywidgets.__version__, "anywidget": anywidget.__version__}}


_VIEWS: dict = {}


def _message(request: dict) -> dict:
    _SENT.clear()
    buffers = [memoryview(base64.b64decode(b)) for b in request.get("buffers", [])]
    _COMMS[request["comm_id"]].handle_msg({"content": {"comm_id": request["comm_id"], "data": request["data"]},
                                           "buffers": buffers})
    return {"sent": list(_SENT)}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = _open(request) if request["op"] == "open" else _message(request)
        except Exception as exc:  # the test shows it
            import traceback

            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
