"""What each notebook host needs of a view: the arrays' wire form and a display without a kernel.

Arrays travel as binary buffers wherever the host delivers them (JupyterLab, Notebook 7, VS Code, marimo). Colab's
widget manager drops the buffers of a widget's *initial* state (googlecolab/colab-cdn-widget-manager: its
``commChannelOpened`` never passes them on), so:

- in a Colab kernel (``google.colab`` imported) a view sends its arrays as base64 JSON from the start;
- anywhere else, a front end whose arrays arrived without data asks once (``{"type": "ew:resend"}``) and the view
  answers with its whole state, arrays as base64, and keeps base64 for later updates of that view.

A view's display data also holds ``text/html``: its offline page (``ew.save_html``) in an iframe ``srcdoc``, shown
where no kernel runs (nbconvert HTML, nbviewer, Quarto, a docs site). Front ends that render widgets pick the widget
mime type first. ``set_html_fallback(False)`` (or ``ECCO_WIDGETS_HTML_FALLBACK=0``) leaves it out.

Example:

>>> import numpy as np, ecco_widgets as ew
>>> g = ew.RankGrid(tokens=["a", "b", "c"], ranks=np.array([[3, 1]]))
>>> data, _ = g._repr_mimebundle_()
>>> sorted(data)
['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
>>> data["text/html"].startswith("<iframe")
True
"""

from __future__ import annotations

import html
import os
import sys
from typing import Any

__all__ = ["BINARY", "BASE64", "FALLBACK_MAX_BYTES", "HostDisplay", "html_fallback", "html_fallback_enabled", "in_colab",
           "initial_wire", "set_html_fallback"]

BINARY = "binary"
BASE64 = "base64"

#: A view whose offline page is larger than this gets a short note instead (a saved notebook stays small).
FALLBACK_MAX_BYTES = 4_000_000

_fallback: bool | None = None  # None: follow ECCO_WIDGETS_HTML_FALLBACK


def in_colab() -> bool:
    """True in a Colab kernel (its ``google.colab`` package is imported at start-up)."""
    return "google.colab" in sys.modules


def initial_wire() -> str:
    """The arrays' wire form for a new view: base64 in Colab, binary buffers elsewhere."""
    return BASE64 if in_colab() else BINARY


def set_html_fallback(enabled: bool) -> None:
    """Turn the kernel-free ``text/html`` copy of each displayed view on (default) or off.

    >>> set_html_fallback(False); html_fallback_enabled()
    False
    >>> set_html_fallback(True); html_fallback_enabled()
    True
    """
    global _fallback
    if not isinstance(enabled, bool):
        raise TypeError(f"set_html_fallback: expected True or False, got {enabled!r}")
    _fallback = enabled


def html_fallback_enabled() -> bool:
    """Whether displayed views carry their offline page (``set_html_fallback``, else the environment variable)."""
    if _fallback is not None:
        return _fallback
    return os.environ.get("ECCO_WIDGETS_HTML_FALLBACK", "1").strip().lower() not in ("0", "false", "no", "off")


# Sizes the iframe to its page once loaded, and again when the page grows (a same-origin srcdoc document).
_RESIZE = ("var f=this,d=f.contentDocument;if(!d||!d.body)return;var s=function(){var b=d.body,c=getComputedStyle(b);"
           "f.style.height=Math.ceil(b.getBoundingClientRect().height+parseFloat(c.marginTop)+parseFloat(c.marginBottom)+4)"
           "+'px'};s();if(window.ResizeObserver)new ResizeObserver(s).observe(d.body)")


def html_fallback(view: Any) -> str:
    """The view's offline page in an iframe ``srcdoc``: interactive with no kernel and no network."""
    from .export import to_html

    page = to_html(view)
    size = len(page.encode("utf-8"))
    name = type(view).__name__
    if size > FALLBACK_MAX_BYTES:
        return (f"<p><i>ecco_widgets {html.escape(name)}: {size / 1e6:.1f} MB is too large to keep in the saved "
                "notebook; use ew.save_html for a page of its own.</i></p>")
    return (f'<iframe class="ew-saved-view" title="{html.escape(name)}" srcdoc="{html.escape(page, quote=True)}" '
            f'style="width:100%;height:160px;border:0" onload="{html.escape(_RESIZE, quote=True)}"></iframe>')


class HostDisplay:
    """Mixed into every view (``EccoView``): the arrays' wire form, the answer to a resend request, the display data.

    A view starts on :func:`initial_wire`. Its JS sends ``{"type": "ew:resend"}`` when its arrays came without data;
    the view then switches to base64 (no more buffers for it: that host lost them once) and sends its whole state
    again in one ``update`` (``docs/view_contract.md``, "Hosts").
    """

    #: how this view's arrays travel: binary buffers, or base64 JSON where a host loses buffers
    _ew_wire: str = BINARY

    def __init__(self, **kwargs: Any) -> None:
        self._ew_wire = initial_wire()  # before the comm opens with the initial state
        super().__init__(**kwargs)
        self.on_msg(_resend_state)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, plus its offline page as ``text/html`` for readers of the saved notebook without a kernel."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None or not html_fallback_enabled():
            return bundle
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        return {**data, "text/html": html_fallback(self)}, metadata


def _resend_state(view: Any, content: Any, buffers: Any) -> None:
    """Answer a front end that lost the initial state's binary buffers (Colab's widget manager drops them)."""
    if isinstance(content, dict) and content.get("type") == "ew:resend":
        view._ew_wire = BASE64
        view.send_state()
