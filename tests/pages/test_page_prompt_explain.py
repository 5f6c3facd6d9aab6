"""AppTest: "why this label" on the Prompt templates page, for a row of a finished run (issue 15)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from llm_backend.data.files import load_sample
from tests.conftest import APP_TIMEOUT, ROOT
from ui import state
from ui.state import ActiveDataset

PAGE = str(ROOT / "pages" / "2_Prompt_templates.py")


def test_explain_a_row_of_a_prompt_run_with_its_attention_view():
    df = load_sample("Product reviews").df
    df = pd.concat([g.head(2) for _, g in df.groupby("sentiment")]).reset_index(drop=True)
    at = AppTest.from_file(PAGE, default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, "reviews", "text", "sentiment", len(df))
    at.run()
    at.number_input(key="pt_rows").set_value(4).run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    res = at.session_state["pt_results"]["My template"]
    at.selectbox(key="pt_xp_0_xp_pos").set_value(1).run()
    at.button(key="pt_xp_0_xp_go").click().run()
    assert not at.exception, at.exception
    attr = at.session_state["pt_xp_0_xp_result"]["attr"]
    # auto is occlusion for the LM (measured faithful; gradient × input is not), and the page names the method
    assert attr.method == "occlusion" and attr.label == res.pred[1] and attr.scored_text == res.texts[1]
    assert any("method:</b> Occlusion" in h.proto.body for h in at.html)
    shown = res.frame().iloc[1]
    assert np.allclose([attr.probabilities[l] for l in res.labels], [shown[f"p[{l}]"] for l in res.labels], atol=1e-3)
    words = [d.value for d in at.dataframe if list(d.value.columns) == ["word", "weight"]]
    assert words and len(words[0]) == len(attr.words)  # the word table under the highlighted text
    assert any("pushed this label up" in c.value for c in at.caption)
    at.toggle(key="pt_xp_0_xp_att").set_value(True).run()
    assert not at.exception, at.exception
    assert any("Attention is not an explanation" in c.value for c in at.caption)
