"""One font stack for every plot, with CJK fallbacks, so Chinese/Japanese/Korean labels never render as boxes.

Plotly draws in the browser with the fonts the user's system has; the stack names the common CJK fonts of Linux
(Noto Sans CJK, installed in CI by ``.ci/run``), macOS (PingFang, Hiragino) and Windows (Microsoft YaHei) after the
Latin default, so the browser falls back per character.
"""
from __future__ import annotations

PLOT_FONT_FAMILY = ('"Open Sans", verdana, arial, "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", '
                    '"Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK JP", "Noto Sans CJK KR", sans-serif')


def register_plot_template() -> None:
    """Make the CJK-capable font the default of every plotly figure in this process (idempotent)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    if "zss" not in pio.templates:
        pio.templates["zss"] = go.layout.Template(layout={"font": {"family": PLOT_FONT_FAMILY}})
    if pio.templates.default != "plotly+zss":
        pio.templates.default = "plotly+zss"
