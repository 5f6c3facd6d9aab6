"""Zero-Shot Studio's backend: models, scorers, training, metrics and storage. No UI code lives here.

Importing the package applies :mod:`llm_backend.core.config` (offline hub by default) before any model library loads.
"""
from llm_backend.core import config as _config  # noqa: F401  (side effect: HF_HUB_OFFLINE default)

