"""Words → model inputs: sub-word pieces, first-piece labels, case shapes, and splitting of over-long sentences.

Label alignment follows the usual token-classification recipe: a word's tag goes on its first sub-word piece and the
other pieces get -100 (ignored by the loss); at prediction time a word takes the tag predicted on its first piece.

Every bundled torch encoder lowercases its input (MiniLM and MPNet use uncased vocabularies), which throws away the
strongest cue for names. :func:`case_shape` recovers it per word (lower / Title / UPPER / mIxed / digits / other);
the tagger adds a learned embedding of that shape to every piece of the word (see :mod:`llm_backend.ner.model`).

A sentence longer than the model's limit is cut into consecutive pieces at word boundaries, each piece tagged on its
own, and the tags put back together: no tag is ever dropped (the caller gets a note saying how many were split).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

IGNORE = -100
MAX_PIECES_PER_WORD = 16  # a 200-character "word" (a URL, a hash) keeps its first pieces; its tag is on the first
N_SHAPES = 8
SHAPE_NAMES = ("special", "lower", "Title", "UPPER", "mIxed", "digits", "alnum", "other")


def case_shape(word: str) -> int:
    """The case/shape class of a word (index into SHAPE_NAMES, 1..7; 0 is reserved for special tokens)."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 5 if any(c.isdigit() for c in word) else 7
    if any(c.isdigit() for c in word):
        return 6
    if all(c.islower() for c in letters):
        return 1
    if all(c.isupper() for c in letters):
        return 3 if len(letters) > 1 else 2
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 2
    return 4


@dataclass
class Chunk:
    """One model input: a sentence or a piece of a long one. ``word_start`` is its first word's index."""

    sentence: int
    word_start: int
    input_ids: list[int]
    shape_ids: list[int]
    first_piece: list[int]  # position of each word's first piece in input_ids
    labels: list[int] | None = None


def word_pieces(tokenizer: Any, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Sub-word ids of every word of every sentence (no special tokens), with one fast-tokenizer call."""
    if not sentences:
        return []
    enc = tokenizer([list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False,
                    truncation=False)
    out = []
    unk = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0
    for i, words in enumerate(sentences):
        pieces: list[list[int]] = [[] for _ in words]
        for tok_id, wid in zip(enc["input_ids"][i], enc.word_ids(i)):
            if wid is not None and len(pieces[wid]) < MAX_PIECES_PER_WORD:
                pieces[wid].append(tok_id)
        out.append([p or [unk] for p in pieces])  # a word the normaliser erased (control characters) still counts
    return out


def build_chunks(tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int,
                 tag_ids: Sequence[Sequence[int]] | None = None) -> tuple[list[Chunk], int]:
    """Model inputs for ``sentences`` (and their tag ids when training), and how many sentences had to be split."""
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    budget = max_length - 2
    chunks: list[Chunk] = []
    n_split = 0
    for s, (words, pieces) in enumerate(zip(sentences, word_pieces(tokenizer, sentences))):
        start = 0
        parts = 0
        while start < len(words):
            end, used = start, 0
            while end < len(words) and (used + len(pieces[end]) <= budget or end == start):
                used += min(len(pieces[end]), budget)
                end += 1
            ids, shapes, first, labels = [cls_id], [0], [], []
            for w in range(start, end):
                p = pieces[w][:budget]
                first.append(len(ids))
                ids.extend(p)
                shapes.extend([case_shape(words[w])] * len(p))
                if tag_ids is not None:
                    labels.extend([tag_ids[s][w]] + [IGNORE] * (len(p) - 1))
            ids.append(sep_id)
            shapes.append(0)
            chunks.append(Chunk(s, start, ids, shapes, first,
                                [IGNORE] + labels + [IGNORE] if tag_ids is not None else None))
            start = end
            parts += 1
        n_split += parts > 1
    return chunks, n_split


def collate(chunks: Sequence[Chunk], pad_id: int, device: Any) -> dict[str, Any]:
    """A padded batch of tensors (input_ids, attention_mask, shape_ids, and labels when the chunks have them)."""
    import torch

    width = max(len(c.input_ids) for c in chunks)
    ids = torch.full((len(chunks), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(chunks), width), dtype=torch.long)
    shapes = torch.zeros((len(chunks), width), dtype=torch.long)
    labels = torch.full((len(chunks), width), IGNORE, dtype=torch.long)
    for i, c in enumerate(chunks):
        n = len(c.input_ids)
        ids[i, :n] = torch.tensor(c.input_ids)
        mask[i, :n] = 1
        shapes[i, :n] = torch.tensor(c.shape_ids)
        if c.labels is not None:
            labels[i, :n] = torch.tensor(c.labels)
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "shape_ids": shapes.to(device)}
    if chunks[0].labels is not None:
        batch["labels"] = labels.to(device)
    return batch


def repair_iob2(tags: list[str]) -> list[str]:
    """Predicted tags made valid IOB2: an I-X that does not continue an X entity starts one (B-X)."""
    out = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out
