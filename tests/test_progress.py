"""Progress bars leave nothing behind (issue 14, point 9): unit tests of the notebook target, and a real kernel
(nbclient, as tests/test_notebooks.py) running ``lm.generate(..., progress=True)``: no stderr output, no widget and
no bar text left in the cell's outputs."""

from __future__ import annotations

import json
import sys

import pytest

from ecco_widgets import progress


def test_outside_a_kernel_the_bar_goes_to_stderr_and_is_erased(capsys):
    assert not progress.in_notebook()
    with progress.progress_bar(3, "unit-test step", True) as bar:
        bar.update(3)
    err = capsys.readouterr().err
    assert "unit-test step" in err
    assert err.rstrip(" ").endswith("\r")  # tqdm's leave=False erases the line


def test_in_a_kernel_the_bar_is_a_display_updated_in_place_and_blanked(monkeypatch):
    shown: list[tuple[str, str, str]] = []
    import IPython.display as ipd

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(ipd, "display", lambda b, raw, display_id: shown.append(("display", display_id, b["text/plain"])))
    monkeypatch.setattr(ipd, "update_display",
                        lambda b, raw, display_id: shown.append(("update", display_id, b["text/plain"])))
    with progress.progress_bar(4, "kernel step", True) as bar:
        bar.update(2)
        bar.refresh()
    assert shown[0][0] == "display" and "kernel step" in shown[0][2]
    assert {d for _, d, _ in shown} == {shown[0][1]}, "one output, updated in place"
    assert all(kind == "update" for kind, _, _ in shown[1:])
    assert shown[-1][2] == "", "blanked at the end"


KERNEL = "ecco-widgets-progress-test"


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    path = tmp_path_factory.mktemp("jupyter")
    spec = path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ECCO_WIDGETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "progress test", "language": "python", "env": env}))
    return path


@pytest.mark.slow
def test_generate_in_a_notebook_leaves_no_stderr_and_no_bar(kernel_path, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import ecco_widgets as ew\nlm = ew.demo_model()"),
        nbformat.v4.new_code_cell('out = lm.generate("The keys to the cabinet are", max_new_tokens=3, progress=True)\n'
                                  'nmf = out.run_nmf(n_components=2, progress=True) if out.activations is not None '
                                  'else None\nprint("done", out.n_tokens)'),
    ]
    nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600, startup_timeout=180).execute()
    outputs = nb.cells[1].outputs
    assert not [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"], outputs
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})], \
        "a closed progress widget left behind"
    texts = [o.get("data", {}).get("text/plain", "") for o in outputs if o.get("output_type") == "display_data"]
    assert texts, "the bars were shown (as display outputs) ..."
    assert all(t == "" for t in texts), f"... and blanked at the end, but bar text was left behind: {texts}"
    assert any(o.get("name") == "stdout" and "done" in o.get("text", "") for o in outputs)
