"""Reading token-tagged data (CoNLL, tables, plain text), its validation, and entity-level scoring — no model needed."""
from __future__ import annotations

import pandas as pd
import pytest

from llm_backend.core.errors import DataError
from llm_backend.ner.conll import from_table, parse_conll, read_tagged_bytes, spans, tokenize_text
from llm_backend.ner.evaluate import check_tag_sets, evaluate_tags
from llm_backend.ner.features import build_chunks, case_shape, repair_iob2
from tests.conftest import SHARED_DATA, _need


@pytest.fixture(scope="module")
def dev_text() -> str:
    return _need(SHARED_DATA / "conll2003_dev.txt").read_text(encoding="utf-8")


def test_reads_the_real_dev_file(dev_text):
    data = parse_conll(dev_text, "conll2003_dev.txt")
    assert len(data.sentences) == 3250
    assert data.entity_types() == ["LOC", "MISC", "ORG", "PER"]
    assert all(len(s.tokens) == len(s.tags) for s in data.sentences)


def test_orphan_inside_tags_are_repaired_with_a_note_naming_the_line():
    data = parse_conll("The O\nIranian I-MISC\nResistance I-ORG\n", "x.conll")
    assert data.sentences[0].tags == ["O", "B-MISC", "B-ORG"]
    assert any("line 2" in n and "line 3" in n for n in data.notes)


@pytest.mark.parametrize("text, needle", [
    ("EU B-ORG\nrejects\n", "line 2: 1 column"),
    ("EU NNP B-ORG\nrejects O\n", "line 2: 2 columns where the file has 3"),
    ("EU B-ORG\nrejects X-FOO\n", "line 2: tag 'X-FOO' is not BIO"),
    ("EU B-ORG\nrejects B-\n", "line 2"),
    ("\n\n   \n", "no tagged tokens"),
])
def test_malformed_conll_names_the_line(text, needle):
    with pytest.raises(DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_conll(text, "x.conll")


def test_four_column_conll_uses_the_last_column():
    data = parse_conll("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", "x.conll")
    assert data.sentences[0].tokens == ["EU", "rejects"] and data.sentences[0].tags == ["B-ORG", "O"]


def test_tables_per_sentence_and_per_token():
    jsonl = b'{"tokens": ["Peter", "Blackburn", "spoke"], "tags": ["B-PER", "I-PER", "O"]}\n'
    data = read_tagged_bytes(jsonl, "s.jsonl")
    assert data.sentences[0].tags == ["B-PER", "I-PER", "O"]
    per_token = pd.DataFrame({"sentence_id": [1, 1, 2], "token": ["EU", "rejects", "Bonn"],
                              "tag": ["B-ORG", "O", "B-LOC"]})
    assert [s.tokens for s in from_table(per_token).sentences] == [["EU", "rejects"], ["Bonn"]]
    with pytest.raises(DataError, match="2 tokens but 1 tags"):
        from_table(pd.DataFrame({"tokens": ["EU rejects"], "tags": ["O"]}), "t.csv")
    with pytest.raises(DataError, match="needs a 'tokens' column"):
        from_table(pd.DataFrame({"text": ["hello"]}))


def test_plain_text_and_empty_text():
    data = tokenize_text("Germany's representative met Werner Zwingmann in Brussels.\n\n")
    assert data.sentences[0].tokens[:3] == ["Germany", "'s", "representative"]
    assert data.sentences[0].tokens[-1] == "."
    for empty in ("", "   \n\t\n", "\x00\x01"):
        with pytest.raises(DataError, match="no tokens"):
            tokenize_text(empty)


def test_case_shapes():
    assert [case_shape(w) for w in ["eu", "Peter", "EU", "McDonald", "1996", "B52", ",", "A"]] == \
        [1, 2, 3, 4, 5, 6, 7, 2]


def test_long_sentences_are_split_without_losing_tags(registry):
    from transformers import AutoTokenizer

    from llm_backend.models.registry import resolve_location

    tok = AutoTokenizer.from_pretrained(resolve_location(registry.default("embedder")))
    words = ["Peter", "Blackburn", "visited", "Brussels", "today"] * 40  # 200 words, > 32 pieces
    chunks, n_split = build_chunks(tok, [words], 32, [[1] * len(words)])
    assert n_split == 1 and len(chunks) > 1
    assert sum(len(c.first_piece) for c in chunks) == len(words)  # every word keeps its first piece
    assert all(len(c.input_ids) <= 32 for c in chunks)
    assert sum(1 for c in chunks for l in c.labels if l == 1) == len(words)


def test_entity_scores_follow_seqeval_exact_span_and_type():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC", "O"]]  # PER boundary wrong, ORG typed as LOC
    m = evaluate_tags(gold, pred, [["a", "b", "c", "d"], ["e", "f"]])
    assert m["precision"] == pytest.approx(1 / 3) and m["recall"] == pytest.approx(1 / 3)
    assert m["per_type"]["LOC"]["precision"] == pytest.approx(0.5)
    conf = m["confusion"]
    i = {l: k for k, l in enumerate(conf["labels"])}
    assert conf["matrix"][i["ORG"]][i["LOC"]] == 1 and conf["boundary_errors"] == {"PER": 1}
    assert m["n_error_sentences"] == 2 and m["errors"][0]["missed"] == [("PER", 0, 2)]


def test_unknown_tag_set_at_evaluation():
    with pytest.raises(DataError, match="all unknown to this model"):
        check_tag_sets(["GPE", "DATE"], ["PER", "LOC"])
    notes = check_tag_sets(["PER", "GPE"], ["PER", "LOC"])
    assert any("GPE" in n for n in notes) and any("LOC" in n for n in notes)


def test_repair_and_spans():
    assert repair_iob2(["O", "I-PER", "I-LOC", "I-LOC"]) == ["O", "B-PER", "B-LOC", "I-LOC"]
    assert spans(["B-PER", "I-PER", "B-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
