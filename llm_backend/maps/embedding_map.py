"""The embedding map's logic without Streamlit: embed, project, colour, select, query, and draw the figure.

Everything a page needs beyond widgets lives here so it can be tested without a browser and reused by the CLI:
turning a plotly selection into rows, adding a label column, nearest neighbours of a typed query, and the
WebGL figure. All per-point work is vectorised (numpy/pandas); the only Python loops are over colour groups, so
20,000 points stay interactive.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llm_backend.core.errors import DataError, UserError
from llm_backend.core.progress import Progress
from llm_backend.data.labels import Label, labels_from_gold
from llm_backend.maps.projection import Projection, ProjectionParams, fit_projection
from llm_backend.models.embedding_cache import embed_texts
from llm_backend.models.loaded import LoadedModel

LABEL_TEMPLATE = "This text is about {phrase}."
HOVER_CHARS = 200
MAX_COLOUR_GROUPS = 24  # more distinct values than this are shown as the top groups plus "(other)"
DEFAULT_MAX_POINTS = 20_000
DEFAULT_MAP_COLUMN = "map_label"


def label_text(label: Label, template: str = LABEL_TEMPLATE) -> str:
    """The sentence embedded for a label: a short template around its phrase, plus its description if any.

    A bare phrase such as "sports" embeds like a single word; wrapped in a sentence it sits closer to the texts
    it names. The description (for example the keywords of a discovered cluster) sharpens the position further.
    """
    text = template.format(phrase=label.phrase)
    if label.description.strip():
        text = f"{text} {label.description.strip()}"
    return text


@dataclass
class MapResult:
    """Embeddings and a fitted projection of (a sample of) the dataset, keyed for caching in the session."""

    positions: np.ndarray  # row positions (iloc) of the dataset that are on the map
    vectors: np.ndarray  # (n, d) normalised embeddings of those rows
    projection: Projection
    source_rows: int  # rows in the dataset before sampling
    model_key: str
    notes: list[str] = field(default_factory=list)
    hover: np.ndarray | None = None  # tooltip texts, made once per map (see :func:`hover_texts`)

    @property
    def sampled(self) -> bool:
        return len(self.positions) < self.source_rows


def embed_positions(embedder: LoadedModel, texts: Sequence[str], positions: np.ndarray,
                    progress: Progress = None) -> np.ndarray:
    """Embeddings (through the shared cache) of the texts at ``positions``."""
    chosen = [str(texts[i]) for i in positions]
    if len(chosen) < 3:
        raise DataError(f"A map needs at least 3 texts; the data has {len(chosen)}.")
    from llm_backend.core.workshop import RunTimer

    # The workshop's time limit per run, enforced between embedding batches (the map page and the CLI alike).
    return embed_texts(embedder, chosen, progress=RunTimer("Computing the map").progress(progress))


def text_notes(texts: Sequence[str], positions: np.ndarray) -> list[str]:
    blanks = int(sum(1 for i in positions if not str(texts[i]).strip()))
    return [f"{blanks} empty texts are on the map; they all sit at the same point."] if blanks else []


def build_map(
    embedder: LoadedModel,
    texts: Sequence[str],
    params: ProjectionParams,
    positions: np.ndarray | None = None,
    progress: Progress = None,
) -> MapResult:
    """Embed the texts at ``positions`` (all by default) and fit the projection (the CLI's and tests' one call)."""
    positions = np.arange(len(texts)) if positions is None else np.asarray(positions)
    vectors = embed_positions(embedder, texts, positions, progress)
    projection = fit_projection(vectors, params)
    return MapResult(positions, vectors, projection, len(texts), embedder.spec.key,
                     list(projection.notes) + text_notes(texts, positions))


def place_labels(embedder: LoadedModel, projection: Projection, labels: Sequence[Label]) -> pd.DataFrame:
    """Label points in the map's space: columns name, text (what was embedded), x, y."""
    if not labels:
        return pd.DataFrame(columns=["name", "text", "x", "y"])
    texts = [label_text(l) for l in labels]
    xy = projection.transform(embed_texts(embedder, texts))
    return pd.DataFrame({"name": [l.name for l in labels], "text": texts, "x": xy[:, 0], "y": xy[:, 1]})


def nearest_neighbours(query_vector: np.ndarray, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``vectors``) and cosines of the k most similar rows, most similar first."""
    if k < 1:
        raise UserError("The number of neighbours must be at least 1.")
    if len(vectors) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=np.float32)
    q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    sims = vectors @ q
    k = min(k, len(sims))
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return top, sims[top]


def query_neighbours(embedder: LoadedModel, query: str, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embed a typed query and return (neighbour indices, cosines, the query's vector)."""
    if not query.strip():
        raise UserError("Type a query to find its nearest texts.")
    q = embed_texts(embedder, [query.strip()])[0]
    idx, sims = nearest_neighbours(q, vectors, k)
    return idx, sims, q


def neighbour_table(index: pd.Index, positions: np.ndarray, idx: np.ndarray, sims: np.ndarray,
                    map_texts: Sequence[str], gold: Sequence[str] | None = None) -> pd.DataFrame:
    """A query's neighbours as rows: the dataset's own row label (not the map position), cosine, text, gold."""
    out = pd.DataFrame({"row": index[positions[idx]], "similarity": np.round(sims, 3),
                        "text": [map_texts[i] for i in idx]})
    if gold:
        out["gold"] = [gold[positions[i]] for i in idx]
    return out


def labels_to_place(label_set: Sequence[Label] | None, gold: Sequence[str] | None) -> tuple[list[Label], str]:
    """The labels drawn on the map and where they come from: the session's label set, else the gold classes.

    Drawing the gold classes when no label set exists yet shows at once whether the class names sit where their
    texts are, before the analyst writes any label.
    """
    if label_set:
        return list(label_set), "the current label set"
    if gold:
        return labels_from_gold(gold), "the gold classes (no label set yet)"
    return [], "the current label set"


# --- selection -------------------------------------------------------------------------------------------------

def selection_to_positions(selection: Mapping[str, Any] | None) -> list[int]:
    """Dataset row positions from a Streamlit plotly selection state (``event`` or ``event["selection"]``).

    Points carry their row position as ``customdata`` (a number, or a list whose first item is the number); points
    without one (label markers, the query marker) are ignored. Order of first selection is kept, duplicates dropped.
    """
    if not selection:
        return []
    sel = selection.get("selection", selection) if isinstance(selection, Mapping) else {}
    points = sel.get("points", []) if isinstance(sel, Mapping) else []
    out: dict[int, None] = {}
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is None:
            continue
        try:
            pos = int(cd)
        except (TypeError, ValueError):
            continue
        if pos >= 0:
            out[pos] = None
    return list(out)


def next_selection(event_positions: list[int], current: list[int], last_event: list[int],
                   figure_changed: bool) -> list[int]:
    """The selection to keep after a rerun, given what the chart reports.

    A chart whose figure changed (recoloured, new query) is remounted by the browser and reports an empty
    selection; that must not wipe the rows the analyst selected. An empty report on an unchanged figure after a
    non-empty one means the user cleared the selection (double click). Any new non-empty report replaces it.
    """
    if event_positions:
        return list(event_positions) if event_positions != last_event else list(current)
    if last_event and not figure_changed:
        return []
    return list(current)


def selected_rows(df: pd.DataFrame, positions: Sequence[int]) -> pd.DataFrame:
    """The selected rows of the dataset (original index kept), ignoring positions that are out of range."""
    pos = [int(p) for p in positions if 0 <= int(p) < len(df)]
    return df.iloc[pos]


def assign_label(df: pd.DataFrame, positions: Sequence[int], value: str, column: str = DEFAULT_MAP_COLUMN,
                 protected: Sequence[str] = ()) -> pd.DataFrame:
    """A copy of ``df`` whose ``column`` holds ``value`` at the selected rows (other rows keep theirs, or '').

    The column can then serve as a gold/training column (the fine-tune page trains from any column). Protected
    columns (the text column) cannot be overwritten.
    """
    column = (column or "").strip()
    value = (value or "").strip()
    if not column:
        raise UserError("Name the column that keeps the labels (for example 'map_label').")
    if column in protected:
        raise UserError(f"'{column}' is the text column; choose another column name for the labels.")
    if not value:
        raise UserError("Type the label to give the selected rows.")
    pos = [int(p) for p in positions if 0 <= int(p) < len(df)]
    if not pos:
        raise UserError("Select some points on the map first (box or lasso).")
    out = df.copy()
    if column in out.columns:
        col = out[column].astype(object).where(out[column].notna(), "")
    else:
        col = pd.Series([""] * len(out), index=out.index, dtype=object)
    values = col.to_numpy(dtype=object, copy=True)
    values[pos] = value
    out[column] = values
    return out


def label_counts(df: pd.DataFrame, column: str) -> pd.Series:
    """How many rows carry each value of a label column, blanks left out (what an assignment message lists)."""
    return df[column.strip()].astype(str).replace("", np.nan).dropna().value_counts()


# --- colouring and the figure ------------------------------------------------------------------------------------

def valid_predictions(predictions: Mapping[str, Any] | None, fingerprint: str, n_rows: int) -> Mapping[str, Any] | None:
    """The zero-shot page's predictions if they were made on this very dataset, else None."""
    if not predictions or predictions.get("fingerprint") != fingerprint:
        return None
    pred = predictions.get("pred")
    if pred is None or len(pred) != n_rows:
        return None
    return predictions


def confidence(predictions: Mapping[str, Any]) -> np.ndarray:
    """Top probability per row (NaN when the predictions carry no probabilities)."""
    probs = predictions.get("probs")
    if probs is None:
        return np.full(len(predictions["pred"]), np.nan)
    probs = np.asarray(probs, dtype=float)
    return probs.max(axis=1) if probs.ndim == 2 and probs.shape[1] else np.full(len(probs), np.nan)


def correctness(gold: Sequence[str], pred: Sequence[str]) -> np.ndarray:
    """'correct' / 'incorrect' per row; rows without a gold label are 'no gold'."""
    g = pd.Series(list(gold), dtype=object).fillna("").astype(str).str.strip()
    p = pd.Series(list(pred), dtype=object).fillna("").astype(str).str.strip()
    out = np.where(g.to_numpy() == p.to_numpy(), "correct", "incorrect").astype(object)
    out[(g == "").to_numpy()] = "no gold"
    return out


def hover_texts(texts: Sequence[str], limit: int = HOVER_CHARS, wrap: int = 70) -> np.ndarray:
    """Texts cut to ``limit`` characters, HTML-escaped and wrapped with <br> so the tooltip stays readable."""
    s = pd.Series(list(texts), dtype=object).fillna("").astype(str)
    cut = s.str.slice(0, limit).where(s.str.len() <= limit, s.str.slice(0, limit - 1) + "…")
    cut = cut.map(html.escape).str.replace(r"\s+", " ", regex=True)
    # A line break at the first space after every ``wrap`` characters; one regex, not textwrap per text (10x faster).
    return cut.str.replace(rf"(.{{{wrap}}}\S*) ", r"\1<br>", regex=True).to_numpy(dtype=object)


def categorical(values: Sequence[Any], max_groups: int = MAX_COLOUR_GROUPS) -> np.ndarray:
    """Values as strings, with rare values folded into '(other)' beyond ``max_groups`` groups."""
    s = pd.Series(list(values), dtype=object).map(lambda v: "(blank)" if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "" else str(v))
    counts = s.value_counts()
    if len(counts) > max_groups:
        keep = set(counts.index[: max_groups - 1])
        s = s.where(s.isin(keep), "(other)")
    return s.to_numpy(dtype=object)


def is_continuous(values: Sequence[Any]) -> bool:
    """Numeric with many distinct values: drawn with a colour scale rather than a legend."""
    s = pd.Series(list(values))
    numeric = pd.to_numeric(s, errors="coerce")
    return bool(numeric.notna().mean() > 0.95 and numeric.nunique() > MAX_COLOUR_GROUPS)


def map_figure(
    coords: np.ndarray,
    texts: Sequence[str],
    positions: np.ndarray,
    colour: Sequence[Any] | None = None,
    colour_name: str = "",
    labels: pd.DataFrame | None = None,
    highlight: np.ndarray | None = None,
    query_xy: np.ndarray | None = None,
    query_text: str = "",
    height: int = 650,
    hover: np.ndarray | None = None,
    focus: str | None = None,
    max_groups: int = MAX_COLOUR_GROUPS,
):
    """A WebGL scatter of the map.

    Every text point carries its dataset row position as ``customdata`` so a selection maps back to rows whatever
    the colouring. The current selection is not drawn into the figure: a changed figure remounts the chart in the
    browser and would reset the very selection being drawn. Label points (stars), query neighbours (rings) and the query (cross) are drawn on top and carry
    no customdata, so selecting them selects no rows.

    Many classes (issue 18: 77 intents folded 54 of them into one "(other)" with 24 colours): ``max_groups`` keeps
    up to that many groups with a 74-colour palette (colours repeat beyond it; hover and legend carry the names),
    and ``focus`` draws one group in a strong colour over grey for everything else. Label stars carry their names
    as text only up to 20 labels (or the focused one); beyond that the names are on hover, so they never overprint.
    """
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    coords = np.asarray(coords)
    positions = np.asarray(positions)
    hover = hover_texts(texts) if hover is None else np.asarray(hover, dtype=object)
    fig = go.Figure()
    marker_size = 5 if len(coords) > 5000 else 7
    common = dict(mode="markers", hovertemplate="%{text}<extra>%{fullData.name}</extra>")
    if colour is None:
        fig.add_trace(go.Scattergl(x=coords[:, 0], y=coords[:, 1], text=hover, customdata=positions, name="texts",
                                   marker=dict(size=marker_size, opacity=0.7), **common))
    elif is_continuous(colour):
        values = pd.to_numeric(pd.Series(list(colour)), errors="coerce").to_numpy(dtype=float)
        fig.add_trace(go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], text=hover, customdata=positions, name=colour_name or "value",
            marker=dict(size=marker_size, opacity=0.8, color=values, colorscale="Viridis", showscale=True,
                        colorbar=dict(title=dict(text=colour_name))),
            hovertemplate="%{text}<br><b>" + html.escape(colour_name) + ":</b> %{marker.color:.3f}<extra></extra>",
            mode="markers"))
    elif focus is not None:
        groups = categorical(colour, max_groups)
        mask = groups == focus
        fig.add_trace(go.Scattergl(x=coords[~mask, 0], y=coords[~mask, 1], text=hover[~mask],
                                   customdata=positions[~mask], name=f"other classes ({int((~mask).sum())})",
                                   marker=dict(size=marker_size, opacity=0.35, color="#c7c7c7"), **common))
        fig.add_trace(go.Scattergl(x=coords[mask, 0], y=coords[mask, 1], text=hover[mask], customdata=positions[mask],
                                   name=f"{html.escape(str(focus))} ({int(mask.sum())})",
                                   marker=dict(size=marker_size + 3, opacity=0.95, color="#d62728",
                                               line=dict(width=0.5, color="#111")), **common))
    else:
        groups = categorical(colour, max_groups)
        palette = qualitative.Alphabet + qualitative.Dark24 + qualitative.Light24
        order = pd.Series(groups).value_counts().index.tolist()
        order = sorted(order, key=lambda g: (g in ("(other)", "(blank)", "noise"), str(g)))
        for i, g in enumerate(order):  # one trace per colour group, so the legend toggles groups
            mask = groups == g
            fig.add_trace(go.Scattergl(
                x=coords[mask, 0], y=coords[mask, 1], text=hover[mask], customdata=positions[mask],
                name=f"{html.escape(str(g))} ({int(mask.sum())})", legendgroup=str(g),
                marker=dict(size=marker_size, opacity=0.75, color=palette[i % len(palette)]), **common))
    if highlight is not None and len(highlight):
        h = np.asarray(highlight)
        fig.add_trace(go.Scatter(x=coords[h, 0], y=coords[h, 1], mode="markers", name="query neighbours",
                                 text=hover[h], hovertemplate="%{text}<extra>neighbour</extra>",
                                 marker=dict(size=14, symbol="circle-open", color="#d62728", line=dict(width=2.5))))
    if query_xy is not None and len(query_xy):
        fig.add_trace(go.Scatter(x=[float(query_xy[0])], y=[float(query_xy[1])], mode="markers+text", name="query",
                                 text=[html.escape(query_text[:40])], textposition="bottom center",
                                 hovertemplate="query: %{text}<extra></extra>",
                                 marker=dict(size=16, symbol="x", color="#d62728", line=dict(width=1, color="white"))))
    if labels is not None and len(labels):
        named = len(labels) <= 20
        if focus is not None and not named:
            labels = labels[labels["name"].astype(str) == str(focus)]
            named = True
        fig.add_trace(go.Scatter(
            x=labels["x"], y=labels["y"], mode="markers+text" if named else "markers", name="labels",
            text=[html.escape(str(n)) for n in labels["name"]], textposition="top center",
            textfont=dict(size=13, color="#111"), hovertext=[html.escape(str(t)) for t in labels["text"]],
            hovertemplate="<b>label %{text}</b><br>%{hovertext}<extra></extra>",
            marker=dict(size=18 if named else 11, symbol="star", color="gold", opacity=1.0 if named else 0.85,
                        line=dict(width=1.5 if named else 1.0, color="#111"))))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), dragmode="lasso",
                      legend=dict(title=dict(text=colour_name), itemsizing="constant"),
                      xaxis=dict(showticklabels=False, title=None, zeroline=False),
                      yaxis=dict(showticklabels=False, title=None, zeroline=False))
    return fig
