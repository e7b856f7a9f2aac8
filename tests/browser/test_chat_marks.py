"""Chat marks in Chromium (exported page): the first token of each turn carries its role, special tokens are dimmed,
in token rows and on the lens grid's axis."""

from __future__ import annotations

from test_chat_marks import SPECIAL, chat_output, views_of


def test_turns_marked_and_special_tokens_dimmed_in_chromium(probe, tmp_path):
    views = views_of(chat_output())
    probe.open_export([views["saliency"], views["rankings"], views["attention"]], tmp_path / "chat.html")
    page = probe.page
    for v in (0, 2):  # token rows: a role label on each turn's first token
        roles = page.eval_on_selector_all(f"#ew-view-{v} .ew-tokens .ew-tok[data-turn-role]",
                                          "ts => ts.map(t => [+t.dataset.index, t.dataset.turnRole])")
        assert roles == [[0, "user"], [4, "assistant"]], v
        opacity = page.eval_on_selector_all(f"#ew-view-{v} .ew-tokens .ew-tok",
                                            "ts => ts.map(t => +getComputedStyle(t).opacity)")
        assert [o < 1 for o in opacity] == SPECIAL.tolist(), v
    # the lens grid's bottom axis (column p = token p): the same marks
    bottom = page.eval_on_selector_all("#ew-view-1 .ew-axis-bottom .ew-tok",
                                       "ts => ts.map(t => [t.classList.contains('ew-turn-start'), +getComputedStyle(t).opacity < 1])")
    assert [b[0] for b in bottom] == [True, False, False, False, True, False, False]
    assert [b[1] for b in bottom] == SPECIAL[:-1].tolist()
    probe.assert_clean()
