"""Pages on Chinese data: the language notice on load, the multilingual embedder and Chinese template preselected,
and the warning for a label set in another language. No model runs here (the selections are what is tested)."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from llm_backend.data.files import load_sample
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER
from tests.conftest import APP_TIMEOUT, app_test
from ui import state
from ui.state import ActiveDataset

ZERO_SHOT = str(Path(__file__).resolve().parents[2] / "pages" / "1_Zero-shot_labels.py")
SAMPLE = "Customer requests zh"


def test_home_page_says_which_language_and_embedder():
    at = app_test("Home.py")
    at.run()
    at.selectbox(key="home_sample").set_value(SAMPLE).run()
    assert not at.exception, at.exception
    notes = " ".join(i.value for i in at.info)
    assert "Chinese" in notes and MULTILINGUAL_EMBEDDER in notes and "这段文字是关于{label}的。" in notes
    at.selectbox(key="home_sample").set_value("Support tickets").run()
    assert not any("Detected text language" in i.value for i in at.info)  # English: nothing to say


def _zero_shot(df, name: str) -> AppTest:
    at = AppTest.from_file(ZERO_SHOT, default_timeout=APP_TIMEOUT)
    at.session_state[state.DATASET] = ActiveDataset(df, name, "text", "category", len(df))
    at.run()
    assert not at.exception, at.exception
    return at


def test_zero_shot_page_preselects_multilingual_embedder_and_chinese_template():
    df = load_sample(SAMPLE).df
    at = _zero_shot(df, SAMPLE)
    assert at.selectbox(key="zs_a_model_zh").value == MULTILINGUAL_EMBEDDER
    assert at.text_area(key="zs_a_template_0_zh").value == "这段文字是关于{label}的。"
    assert not any("label names look" in w.value for w in at.warning)  # Chinese labels on Chinese texts


def test_zero_shot_page_warns_about_english_labels_on_chinese_texts():
    df = load_sample(SAMPLE).df
    english = {"账单问题": "billing", "退货退款": "refunds", "物流配送": "shipping", "账号登录": "account login",
               "技术故障": "technical problem", "取消服务": "cancellation", "产品咨询": "product question",
               "表扬反馈": "praise"}
    df = df.assign(category=df["category"].map(english))
    at = _zero_shot(df, SAMPLE)
    warnings = " ".join(w.value for w in at.warning)
    assert "label names look English" in warnings and "Chinese" in warnings
    # the template follows the labels' language: an English sentence, not an English word in a Chinese frame
    assert at.text_area(key="zs_a_template_0_en").value == "This text is about {label}."
