"""Streamlit-only helpers shared by the pages. Everything that is not drawing or session state lives in llm_backend."""
