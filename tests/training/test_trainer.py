"""Each training method on a tiny real slice (4 AG News classes × 4 rows, 1 epoch) with the real MiniLM."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from llm_backend.core.errors import TrainingError
from llm_backend.data.sampler import select_per_class
from llm_backend.models.embedding_cache import encode_uncached
from llm_backend.training.loop import TrainCallbacks, TrainConfig
from llm_backend.training.runs import RunManager
from llm_backend.training.trained_models import (
    EmbeddingHeadModel,
    SequenceModel,
    predict,
)
from llm_backend.training.trained_models import both_views
from llm_backend.training.trainer import average_heads, train


@pytest.fixture(scope="module")
def slices(ag_news):
    idx, _ = select_per_class(ag_news["label"].tolist(), 4, seed=0)
    train_df = ag_news.iloc[idx]
    rest = ag_news.drop(index=ag_news.index[idx])
    test_df = rest.sample(40, random_state=0)
    return train_df["text"].tolist(), train_df["label"].tolist(), test_df["text"].tolist(), test_df["label"].tolist()


def _accuracy(model, texts, gold):
    pred, probs = predict(model, texts)
    assert probs.shape == (len(texts), len(model.classes))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    return float(np.mean([p == g for p, g in zip(pred, gold)]))


def test_head_on_embeddings_beats_chance(embedder, slices):
    texts, labels, test_texts, test_gold = slices
    rows = []
    result = train(texts, labels, TrainConfig(method="head"), embedder, TrainCallbacks(on_epoch=rows.append))
    assert isinstance(result.model, EmbeddingHeadModel) and result.model.body is embedder
    assert result.classes == ["Business", "Sci/Tech", "Sports", "World"]
    assert len(rows) == 1 and result.n_train == 16
    assert _accuracy(result.model, test_texts, test_gold) >= 0.5  # chance is 0.25


def test_label_anchors_lift_the_head_on_every_seed(embedder, ag_news):
    """Each class's label sentence as an extra weighted row: 4 rows per class, 3 seeds, 300 held-out rows each."""
    from llm_backend.evaluation.metrics import evaluate

    texts, labels = ag_news["text"].tolist(), ag_news["label"].tolist()
    gains = []
    for seed in range(3):
        idx, _ = select_per_class(labels, 4, seed)
        rest = np.setdiff1d(np.arange(len(texts)), idx)
        test = np.random.default_rng(seed).choice(rest, 300, replace=False)
        f1 = {}
        for weight in (0.0, 2.0):
            res = train([texts[i] for i in idx], [labels[i] for i in idx],
                        TrainConfig(method="head", seed=seed, label_anchor_weight=weight), embedder)
            pred, _ = predict(res.model, [texts[i] for i in test])
            f1[weight] = evaluate([labels[i] for i in test], pred)["macro_f1"]
        gains.append(f1[2.0] - f1[0.0])
    assert min(gains) > 0 and np.mean(gains) >= 0.02, gains


def test_label_anchors_use_the_label_set_descriptions(embedder):
    from llm_backend.data.labels import Label
    from llm_backend.models.embedding_cache import embed_texts
    from llm_backend.training.trainer import class_anchors

    encode = lambda s: embed_texts(embedder, s)  # noqa: E731
    plain = class_anchors(encode, ["card_arrival", "refund"])
    described = class_anchors(encode, ["card_arrival", "refund"],
                              [Label("card_arrival", "when will my new card be delivered")])
    assert plain.shape == (2, 384) and np.allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(plain[0], described[0]) and np.allclose(plain[1], described[1])
    with pytest.raises(TrainingError, match="anchor weight"):
        TrainConfig(label_anchor_weight=-1).resolved()


def test_setfit_tunes_a_copy_and_leaves_the_shared_embedder_alone(embedder, slices):
    texts, labels, test_texts, test_gold = slices
    before = encode_uncached(embedder, texts[:3])
    steps = []
    cfg = TrainConfig(method="setfit", num_pairs=32, batch_size=16, epochs=1, seed=0)
    result = train(texts, labels, cfg, embedder, TrainCallbacks(progress=lambda d, t: steps.append((d, t))))
    assert steps[-1] == (2, 2)  # 32 pairs in batches of 16: bounded, not 16*15/2 = 120 pairs
    assert result.model.body is not embedder and result.model.body.model is not embedder.model
    np.testing.assert_allclose(encode_uncached(embedder, texts[:3]), before, atol=1e-6)
    tuned = encode_uncached(result.model.body, texts[:3])
    assert not np.allclose(tuned, before, atol=1e-4)  # the copy did change
    assert result.history[0]["loss"] > 0
    assert _accuracy(result.model, test_texts, test_gold) >= 0.4


def test_average_heads_gives_the_mean_of_the_two_heads_logits():
    rng = np.random.default_rng(0)
    tuned, base = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    wt, bt, wb, bb = rng.normal(size=(3, 8)), rng.normal(size=3), rng.normal(size=(3, 8)), rng.normal(size=3)
    w, b = average_heads((wt, bt), (wb, bb))
    np.testing.assert_allclose(both_views(tuned, base) @ w.T + b, (tuned @ wt.T + bt + base @ wb.T + bb) / 2,
                               rtol=1e-5, atol=1e-5)


def test_setfit_head_averages_the_tuned_head_and_the_untouched_head(embedder, slices):
    """base_view=True predicts the renormalised geometric mean of the tuned-view model (base_view=False, same seed:
    the same body) and the plain ``head`` model on the untouched embedder."""
    texts, labels, test_texts, _ = slices
    cfg = dict(method="setfit", num_pairs=32, batch_size=16, seed=3)
    both_run = train(texts, labels, TrainConfig(**cfg), embedder)
    both = both_run.model
    tuned_only = train(texts, labels, TrainConfig(**cfg, base_view=False), embedder).model
    head = train(texts, labels, TrainConfig(method="head", seed=3), embedder).model
    assert both.base is embedder and tuned_only.base is None
    np.testing.assert_allclose(encode_uncached(both.body, test_texts[:4]), encode_uncached(tuned_only.body,
                               test_texts[:4]), atol=1e-5)  # seeded: the same tuned body
    expected = (tuned_only.predict_log_proba(test_texts) + head.predict_log_proba(test_texts)) / 2
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(both.predict_log_proba(test_texts), expected, atol=1e-4)
    assert any("averages two heads" in n for n in both_run.notes)


@pytest.mark.parametrize("method", ["finetune", "finetune-head", "lora"])
def test_transformer_fine_tunes(embedder, slices, method):
    texts, labels, test_texts, test_gold = slices
    cfg = TrainConfig(method=method, epochs=2, batch_size=8, val_fraction=0.25, seed=0)
    result = train(texts, labels, cfg, embedder)
    assert isinstance(result.model, SequenceModel)
    assert result.n_val == 4 and result.n_train == 12
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert all("val_macro_f1" in r and r["loss"] > 0 for r in result.history)
    net = result.model.model
    assert type(net).__name__ == "BertForSequenceClassification"  # LoRA is merged back: no peft wrapper
    assert not any("lora" in n for n, _ in net.named_parameters())
    trained_note = next(n for n in result.notes if n.startswith("Training "))
    pct = float(trained_note.split("(")[1].split("%")[0])
    assert (pct > 90) if method == "finetune" else (pct < 10)
    _accuracy(result.model, test_texts[:8], test_gold[:8])


def test_stop_request_ends_a_run_early_with_a_usable_model(embedder, slices):
    texts, labels, test_texts, _ = slices
    calls = {"n": 0}

    def stop_after_first_step() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    cfg = TrainConfig(method="finetune", epochs=5, batch_size=8)
    result = train(texts, labels, cfg, embedder, TrainCallbacks(should_stop=stop_after_first_step))
    assert result.stopped and len(result.history) == 1
    assert any("stopped early" in n for n in result.notes)
    assert len(predict(result.model, test_texts[:2])[0]) == 2


def test_bad_training_input_is_refused_with_messages(embedder):
    with pytest.raises(TrainingError, match="at least two classes"):
        train(["a b", "c d", "e f"], ["x", "x", "x"], TrainConfig(method="head"), embedder)
    with pytest.raises(TrainingError, match="Unknown training method"):
        train(["a", "b"], ["x", "y"], TrainConfig(method="magic"), embedder)
    with pytest.raises(TrainingError, match="teacher"):
        train(["a", "b", "c", "d"], ["x", "x", "y", "y"], TrainConfig(method="distill"), embedder)


def test_run_manager_refuses_a_second_run_while_one_runs():
    manager = RunManager()
    release = threading.Event()

    def slow_job(cb):
        cb.status("waiting")
        release.wait(10)
        return None

    run = manager.start("session-a", "head", slow_job)
    with pytest.raises(TrainingError, match="already in progress"):
        manager.start("session-a", "head", slow_job)
    other = manager.start("session-b", "head", slow_job)  # another session may run
    assert run.snapshot().state == "running" and run.snapshot().status == "waiting"
    release.set()
    assert run.wait(10) and other.wait(10)
    manager.start("session-a", "head", lambda cb: None).wait(10)  # finished: a new run is allowed
