"""Frozen classifiers and batch scoring at scale (in-process or on Ray Data)."""
