"""Which models exist (registry) and how they are loaded once per process and shared (model cache, embedding cache, batching, encoder backends)."""
