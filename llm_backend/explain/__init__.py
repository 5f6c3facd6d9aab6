"""Why a scorer chose a label (word attributions) and what a transformer attends to (attention maps).

See docs/explain.md. Entry points: :func:`llm_backend.explain.explainer.explain_text`,
:func:`llm_backend.explain.attention.attention_view`, :func:`llm_backend.explain.faithfulness.deletion_test`.
"""
