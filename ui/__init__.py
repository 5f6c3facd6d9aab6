"""Streamlit-only helpers shared by the pages. Everything that is not drawing or session state lives in llm_backend."""

from llm_backend.maps.plot_style import register_plot_template

register_plot_template()  # CJK-capable fonts in every page's plots
