"""Saving and loading trained models: safetensors/JSON only, atomic, listed by the registry, usable as scorers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from llm_backend.core.errors import ModelError, TrainingError
from llm_backend.data.labels import Label, make_labels
from llm_backend.data.sampler import select_per_class
from llm_backend.models.loading import load_model
from llm_backend.models.registry import ModelRegistry
from llm_backend.scorers.base import Scorer
from llm_backend.training.loop import TrainConfig
from llm_backend.training.trained_models import (
    HEAD_FILE,
    META_FILE,
    UNKNOWN_LABEL_SCORE,
    TrainedScorer,
    predict,
    save_model,
    writable_models_dir,
)
from llm_backend.training.trainer import train


@pytest.fixture(scope="module")
def small(ag_news):
    idx, _ = select_per_class(ag_news["label"].tolist(), 4, seed=1)
    df = ag_news.iloc[idx]
    return df["text"].tolist(), df["label"].tolist(), ag_news["text"].iloc[:10].tolist()


@pytest.fixture(scope="module")
def head_result(embedder, small):
    return train(small[0], small[1], TrainConfig(method="head"), embedder)


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_head_model_round_trip_through_the_registry(head_result, small):
    folder = save_model(head_result.model, "ag-head", head_result.meta(metrics={"macro_f1": 0.5}))
    files = _files(folder)
    assert files == ["head.safetensors", META_FILE]  # the shared embedder is referenced, not copied
    assert not any(f.endswith((".pkl", ".pickle", ".joblib", ".bin")) for f in files)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["role"] == "classifier" and meta["method"] == "head"
    assert meta["labels"] == head_result.classes and meta["base_model"] == "all-MiniLM-L6-v2"
    assert {"description", "settings", "metrics", "created"} <= set(meta)
    assert not any(p.name.startswith(".tmp-") for p in folder.parent.iterdir())

    spec = ModelRegistry().get("ag-head")
    assert spec.source == "trained" and spec.role == "classifier"
    loaded = load_model(spec)
    texts = small[2]
    np.testing.assert_allclose(loaded.model.predict_log_proba(texts), head_result.model.predict_log_proba(texts),
                               atol=1e-5)


def test_trained_scorer_follows_the_given_labels_by_name(head_result, small):
    folder = save_model(head_result.model, "ag-head-2", head_result.meta())
    scorer = TrainedScorer(load_model(ModelRegistry().get(folder.name)))
    assert isinstance(scorer, Scorer) and scorer.kind == "logit"
    assert scorer.label_names == ["Business", "Sci/Tech", "Sports", "World"]
    texts = small[2][:4]
    labels = make_labels(["World", "Weather", "Business"])  # reordered, plus one the model never saw
    scores = scorer.score(texts, labels)
    assert scores.shape == (4, 3)
    assert np.all(scores[:, 1] == UNKNOWN_LABEL_SCORE)
    logp = head_result.model.predict_log_proba(texts)
    np.testing.assert_allclose(scores[:, 0], logp[:, 3], atol=1e-5)
    np.testing.assert_allclose(scores[:, 2], logp[:, 0], atol=1e-5)
    assert np.allclose(scorer.score(texts, [Label("world"), Label("sports")])[:, 0], logp[:, 3], atol=1e-5)


def test_sequence_model_round_trip(embedder, small):
    result = train(small[0], small[1], TrainConfig(method="finetune-head", epochs=1), embedder)
    folder = save_model(result.model, "ag-seq", result.meta())
    files = _files(folder)
    assert "model/model.safetensors" in files and "model/config.json" in files
    loaded = load_model(ModelRegistry().get("ag-seq"))
    pred_a, _ = predict(result.model, small[2])
    pred_b, probs = predict(loaded.model, small[2])
    assert pred_a == pred_b and probs.shape == (10, 4)
    config = json.loads((folder / "model" / "config.json").read_text())
    assert config["id2label"]["0"] == "Business"


def test_existing_names_and_bad_names_are_refused(head_result):
    save_model(head_result.model, "dup", head_result.meta())
    with pytest.raises(TrainingError, match="already exists"):
        save_model(head_result.model, "dup", head_result.meta())
    save_model(head_result.model, "dup", head_result.meta(description="second"), overwrite=True)
    assert json.loads((writable_models_dir() / "dup" / META_FILE).read_text())["description"] == "second"
    assert [p.name for p in writable_models_dir().iterdir()].count("dup") == 1  # the old copy is gone
    for bad in ["", "../escape", "a/b", "-x"]:
        with pytest.raises(TrainingError, match="not a usable model name"):
            save_model(head_result.model, bad, head_result.meta())


def test_models_folder_that_cannot_be_written_is_refused(head_result, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ZSS_MODELS_DIR", str(blocker / "models"))
    with pytest.raises(TrainingError, match="cannot be created"):
        save_model(head_result.model, "nowhere", head_result.meta())


def test_setfit_model_saves_its_tuned_body(embedder, small):
    result = train(small[0], small[1], TrainConfig(method="setfit", num_pairs=16, batch_size=16), embedder)
    folder = save_model(result.model, "ag-setfit", result.meta())
    files = _files(folder)
    assert "body/model.safetensors" in files and "head.safetensors" in files
    loaded = load_model(ModelRegistry().get("ag-setfit"))
    assert loaded.model.body.spec.key != embedder.spec.key  # the tuned body never shares the base's cache
    # the head reads the tuned view and the shared embedder's side by side; loading finds the embedder by name
    dim = embedder.model.get_sentence_embedding_dimension()
    assert result.model.weight.shape[1] == loaded.model.weight.shape[1] == 2 * dim
    assert loaded.model.base is not None and loaded.model.base.spec.name == embedder.spec.name
    np.testing.assert_allclose(loaded.model.predict_log_proba(small[2]), result.model.predict_log_proba(small[2]),
                               atol=1e-4)


def test_setfit_without_the_base_view_reads_its_tuned_body_alone(embedder, small):
    cfg = TrainConfig(method="setfit", num_pairs=16, batch_size=16, base_view=False)
    result = train(small[0], small[1], cfg, embedder)
    assert result.model.base is None
    assert result.model.weight.shape[1] == embedder.model.get_sentence_embedding_dimension()
    folder = save_model(result.model, "ag-setfit-tuned-only", result.meta())
    loaded = load_model(ModelRegistry().get("ag-setfit-tuned-only"))
    assert loaded.model.base is None
    np.testing.assert_allclose(loaded.model.predict_log_proba(small[2]), result.model.predict_log_proba(small[2]),
                               atol=1e-4)
    # a head saved for both views but read with one: a clear error, not a numpy shape traceback
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    from safetensors.numpy import save_file

    save_file({"weight": np.zeros((2, 7), dtype=np.float32), "bias": np.zeros(2, dtype=np.float32)},
              str(folder / HEAD_FILE))
    assert meta["base_view"] is False
    broken = load_model(ModelRegistry().get("ag-setfit-tuned-only"))
    with pytest.raises(ModelError, match="7-dimensional"):
        broken.model.predict_log_proba(small[2])
