"""Loading token-tagged sentences on the Named entities page: upload a file or paste CoNLL text, then a summary.

Reading and validating is ``llm_backend.ner.conll``'s; the upload size limit is the app's (``max_upload_mb``).
"""
from __future__ import annotations

import streamlit as st

from llm_backend.core.config import get_settings
from llm_backend.core.errors import DataError
from llm_backend.ner.conll import TaggedData, parse_conll, read_tagged_bytes
from llm_backend.ner.report import entity_counts, n_tokens

from .errors import user_errors
from .ner_view import highlighted

MAX_PASTE_CHARS = 2_000_000


def tagged_data_loader(data_key: str) -> TaggedData | None:
    """Draw the source choice and loader; a loaded file replaces ``st.session_state[data_key]``, which is returned."""
    source = st.radio("Source", ["Upload a file", "Paste CoNLL text"], horizontal=True, key="ner_source")
    if source == "Upload a file":
        upload = st.file_uploader("CoNLL (token TAG per line, blank line between sentences), or CSV/JSONL with "
                                  "'tokens' and 'tags' columns",
                                  type=["conll", "txt", "iob", "bio", "tsv", "csv", "jsonl", "json"], key="ner_upload")
        if upload is not None and st.button("Load file", key="ner_load_file"):
            with user_errors("Reading the file"):
                limit = get_settings().max_upload_mb
                if upload.size > limit * 1024 * 1024:
                    raise DataError(f"The file is larger than the {limit} MB upload limit.")
                st.session_state[data_key] = read_tagged_bytes(upload.getvalue(), upload.name)
    else:
        pasted = st.text_area("CoNLL text", height=180, key="ner_paste", max_chars=MAX_PASTE_CHARS,
                              placeholder="EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER")
        if st.button("Load text", key="ner_load_paste"):
            with user_errors("Reading the text"):
                st.session_state[data_key] = parse_conll(pasted, "the pasted text")
    data: TaggedData | None = st.session_state.get(data_key)
    if data is not None:
        for note in data.notes:
            st.info(note)
        counts = entity_counts(data)
        st.write(f"**{len(data.sentences):,}** sentences, **{n_tokens(data):,}** tokens, entity types: "
                 + ", ".join(f"`{k}` ({v:,})" for k, v in counts.items()))  # types match [A-Za-z][A-Za-z0-9_.]*
        with st.expander("First sentences"):
            kinds = data.entity_types()
            st.html("".join(highlighted(s.tokens, s.tags, kinds) for s in data.sentences[:8]))
    return data
