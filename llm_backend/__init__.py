"""Zero-Shot Studio's backend: models, scorers, training, metrics and storage. No UI code lives here.

Importing the package applies :mod:`llm_backend.config` (offline hub by default) before any model library loads.
"""
from . import config as _config  # noqa: F401  (side effect: HF_HUB_OFFLINE default)

__all__ = ["config"]
