"""``ner-train``, ``ner-tag`` and ``ner-evaluate`` on small slices of real CoNLL-2003 data.

One tiny model (24 training sentences, 3 epochs) is trained per module: the tests check plumbing (saving, the
registry, the metrics file, long sentences, bad input), not quality; quality is measured by bench/ner.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_backend.cli import main
from llm_backend.ner.conll import parse_conll, to_conll
from tests.conftest import SHARED_DATA, _need


def _slice(name: str, n: int, start: int = 0) -> str:
    data = parse_conll(_need(SHARED_DATA / name).read_text(encoding="utf-8"), name)
    part = data.sentences[start : start + n]
    return to_conll([s.tokens for s in part], [s.tags for s in part])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ner")
    train = root / "train.conll"
    train.write_text(_slice("conll2003_train.txt", 200), encoding="utf-8")
    folder = root / "models" / "cli-ner"
    rc = main(["ner-train", "--data", str(train), "--out", str(folder), "--sentences", "24", "--epochs", "3"])
    assert rc == 0
    return folder, json.loads((folder / "zss_model.json").read_text())


def test_train_saves_a_tagger_the_registry_lists(trained, monkeypatch):
    folder, meta = trained
    assert meta["role"] == "ner" and meta["format"] == "token_classifier" and meta["n_train"] == 24
    assert meta["labels"][0] == "O" and {"B-PER", "I-PER", "B-LOC"} <= set(meta["labels"])
    losses = [row["loss"] for row in meta["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]  # it learns something even in 6 steps
    monkeypatch.setenv("ZSS_MODELS_DIR", str(folder.parent))
    from llm_backend.models.loading import load_model
    from llm_backend.ner.model import NerModel
    from llm_backend.models.registry import ModelRegistry

    spec = ModelRegistry().get("cli-ner")
    assert spec.role == "ner" and spec.source == "trained"
    from llm_backend.models.registry import spec_from_folder

    assert (spec_from_folder(folder).role, spec_from_folder(folder).source) == ("ner", "trained")  # sidebar "add"
    assert isinstance(load_model(spec).model, NerModel)


def test_evaluate_writes_entity_metrics(trained, tmp_path, capsys):
    folder, _ = trained
    dev = tmp_path / "dev.conll"
    dev.write_text(_slice("conll2003_dev.txt", 40), encoding="utf-8")
    out_json = tmp_path / "m.json"
    rc = main(["ner-evaluate", "--model", str(folder), "--data", str(dev), "--metrics-json", str(out_json)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    m = json.loads(out_json.read_text())
    for key in ("micro_f1", "precision", "recall", "per_type"):
        assert key in m
    assert 0 <= m["micro_f1"] <= 1 and m["n_sentences"] == 40
    assert set(m["per_type"]) <= {"PER", "ORG", "LOC", "MISC"}
    assert sum(v["support"] for v in m["per_type"].values()) == m["n_gold_entities"] > 0
    assert "entity micro-F1" in out


def test_tag_plain_text_and_a_long_sentence(trained, tmp_path, capsys):
    folder, _ = trained
    text = tmp_path / "in.txt"
    long_line = " ".join(["Peter Blackburn visited the European Commission in Brussels ."] * 40)  # 360 tokens
    text.write_text("Werner Zwingmann said on Thursday .\n\n" + long_line + "\n", encoding="utf-8")
    out = tmp_path / "tags.jsonl"
    rc = main(["ner-tag", "--model", str(folder), "--data", str(text), "--out", str(out)])
    _, err = capsys.readouterr()
    assert rc == 0, err
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["tokens"]) == len(r["tags"]) for r in rows)
    assert len(rows[1]["tokens"]) == 360  # split for the model's limit, never truncated
    assert "split into consecutive pieces" in err


@pytest.mark.parametrize("content, needle", [
    ("EU B-ORG\nrejects O O\n", "line 2: 3 columns"),
    ("EU B-ORG\nrejects B_MISC\n", "line 2: tag 'B_MISC' is not BIO"),
    ("EU O\nrejects O\n", "no entities"),
])
def test_train_bad_input_exits_2_with_the_line(content, needle, tmp_path, capsys):
    bad = tmp_path / "bad.conll"
    bad.write_text(content, encoding="utf-8")
    rc = main(["ner-train", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert rc == 2
    assert needle in capsys.readouterr().err


def test_bad_input_at_tagging_and_evaluation(trained, tmp_path, capsys):
    folder, _ = trained
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\t\n", encoding="utf-8")
    assert main(["ner-tag", "--model", str(folder), "--data", str(empty), "--out", str(tmp_path / "o.conll")]) == 2
    assert "no tokens" in capsys.readouterr().err
    other = tmp_path / "other.conll"
    other.write_text("Obama B-PERSON\nin O\nParis B-GPE\n", encoding="utf-8")
    assert main(["ner-evaluate", "--model", str(folder), "--data", str(other)]) == 2
    assert "all unknown to this model" in capsys.readouterr().err
    assert main(["ner-tag", "--model", str(tmp_path), "--data", str(other), "--out", str(tmp_path / "o")]) == 2


def test_lora_run_saves_a_plain_encoder(tmp_path, capsys):
    train = tmp_path / "train.conll"
    train.write_text(_slice("conll2003_train.txt", 16, start=300), encoding="utf-8")
    folder = tmp_path / "lora-ner"
    rc = main(["ner-train", "--data", str(train), "--out", str(folder), "--epochs", "1", "--method", "lora"])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert "Training" in err and "weights" in err  # the note says how few weights LoRA trains
    meta = json.loads((folder / "zss_model.json").read_text())
    assert meta["method"] == "lora"
    assert not (folder / "encoder" / "adapter_config.json").exists()  # merged: loads without peft
    from llm_backend.ner.model import load_ner

    tags, _ = load_ner(folder).tag([["Peter", "Blackburn", "spoke", "."]])
    assert len(tags[0]) == 4
