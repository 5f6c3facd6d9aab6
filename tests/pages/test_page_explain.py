"""The Explain page with AppTest: a real row explained with MiniLM, user text escaped, attention view drawn."""
from __future__ import annotations

from llm_backend.data.files import load_sample
from tests.conftest import app_test
from ui import state
from ui.state import ActiveDataset


def _app():
    df = load_sample("News headlines").df.head(30).reset_index(drop=True)
    at = app_test("pages/6_Explain.py")
    at.session_state[state.DATASET] = ActiveDataset(df, "News headlines", "text", "topic", len(df))
    return at, df


def test_explain_row_then_typed_hostile_text_then_attention():
    at, df = _app()
    at.run()
    assert not at.exception
    at.text_input(key="xp_labels").set_value(", ".join(sorted(df["topic"].unique()))).run()
    at.number_input(key="xp_xp_row").set_value(4).run()
    at.button(key="xp_xp_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = " ".join(h.proto.body for h in at.html)
    assert "method:</b> Occlusion" in shown and "rgba(" in shown
    first_word = df["text"].iloc[4].split()[0].strip(".,:;!?'\"")
    assert first_word in shown

    at.text_area(key="xp_xp_text").set_value("<script>alert(1)</script> **sports** match [link](http://x)").run()
    at.button(key="xp_xp_go").click().run()
    assert not at.exception
    shown = " ".join(h.proto.body for h in at.html)
    assert "<script" not in shown and "&lt;" in shown  # tags escaped (the word "script" itself is highlighted)
    assert "**" in shown and "<a " not in shown and "<strong>" not in shown  # markdown is not rendered either

    at.toggle(key="xp_xp_att").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) == 3
    assert any("not an explanation" in c.value for c in at.caption)


def test_one_label_is_refused_with_a_message():
    at, _ = _app()
    at.run()
    at.text_input(key="xp_labels").set_value("sports").run()
    assert not at.exception
    assert any("at least two labels" in e.value for e in at.error)
