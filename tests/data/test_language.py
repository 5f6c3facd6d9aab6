"""Language detection on real data, the defaults it selects, and the warnings for mixed columns and labels."""
from __future__ import annotations

import pandas as pd
import pytest

from llm_backend.data.language import (
    detect_language,
    detect_text_language,
    default_template,
    label_language_warning,
    language_notice,
    recommended_embedder,
    template_language,
)
from llm_backend.data.files import load_sample
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def ecdt() -> pd.DataFrame:
    path = SHARED_DATA / "ecdt_train.csv"
    if not path.is_file():
        pytest.skip("ecdt_train.csv not in shared data")
    return pd.read_csv(path)


def test_chinese_column_selects_multilingual_embedder_and_template(ecdt):
    report = detect_language(ecdt["text"])
    assert report.language == "zh" and report.share > 0.95 and not report.is_mixed
    assert recommended_embedder(report) == MULTILINGUAL_EMBEDDER
    assert default_template(report.language) == "这段文字是关于{label}的。"
    notice = language_notice(report)
    assert "Chinese" in notice and MULTILINGUAL_EMBEDDER in notice


def test_english_column_keeps_the_english_defaults(banking77, ag_news):
    for df in (banking77, ag_news):
        report = detect_language(df["text"])
        assert report.language == "en" and report.share > 0.97
        assert recommended_embedder(report) != MULTILINGUAL_EMBEDDER
        assert language_notice(report) is None


def test_mixed_column_says_what_was_detected_and_chosen(ecdt, banking77):
    mixed = pd.concat([ecdt["text"].head(300), banking77["text"].head(200)])
    report = detect_language(mixed)
    assert report.is_mixed and report.language == "zh" and 0.15 < report.others["en"] < 0.55
    notice = language_notice(report)
    assert "mixes languages" in notice and "English" in notice and MULTILINGUAL_EMBEDDER in notice


@pytest.mark.parametrize("text, code", [
    ("Bonjour, je voudrais annuler ma commande", "fr"), ("Wo ist meine Karte? Ich habe sie nicht bekommen", "de"),
    ("¿Dónde está mi tarjeta? No la he recibido", "es"), ("注文をキャンセルしたいです", "ja"),
    ("카드가 도착하지 않았어요", "ko"), ("Где моя карта?", "ru"), ("iPhone 15 发布会今天在北京举行", "zh"),
    ("card arrival", "en"), ("12345 !!!", "unknown"),
])
def test_single_texts(text, code):
    assert detect_text_language(text) == code


def test_label_set_in_another_language_warns(ecdt):
    report = detect_language(ecdt["text"])
    english_labels = sorted(ecdt["label"].unique())  # ECDT's intents are named in English
    warning = label_language_warning(english_labels, report, MULTILINGUAL_EMBEDDER)
    assert warning and "English" in warning and "Chinese" in warning and "usually still" in warning
    assert "not multilingual" in label_language_warning(english_labels, report, "all-MiniLM-L6-v2")
    assert label_language_warning(["天气", "航班", "诗词"], report, MULTILINGUAL_EMBEDDER) is None
    assert template_language(report, english_labels) == "en"
    assert template_language(report, ["天气", "航班"]) == template_language(report) == "zh"


def test_bundled_chinese_sample():
    df = load_sample("Customer requests zh").df
    assert len(df) >= 200 and df["category"].nunique() == 8
    assert detect_language(df["text"]).language == "zh"
