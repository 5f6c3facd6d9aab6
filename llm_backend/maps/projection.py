"""Projecting embeddings to 2-D with PCA, UMAP or t-SNE, and placing new points (labels, queries) in the same map.

A map is only useful if labels and queries land where their meaning is, so every projection here can *transform*
extra vectors after fitting on the texts:

* **PCA** has a real ``transform``: the fitted model maps a new vector without refitting.
* **t-SNE** has none (it optimises the positions of the points it was given), and **UMAP**'s is unreliable for the
  points placed here: it runs extra optimisation epochs for the new points, and label sentences ("This text is about
  World.") lie outside the texts' distribution, so they drifted — with input vectors changed by 1e-6 (ONNX vs torch
  encoder), 2 of 4 AG News label stars left their class's region (tests/maps/test_projection.py). For both, new points are
  placed at the
  similarity-weighted mean of the 2-D positions of their ``TSNE_NEIGHBOURS`` nearest texts (cosine in the
  embedding space). This keeps the text layout independent of the label set (changing labels never refits), and a
  label lands inside the group of texts most like it, which is what the analyst reads from the map.

Fitting is seeded: the same data, method, parameters and seed give the same coordinates.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from llm_backend.core.errors import DataError, UserError

Method = Literal["pca", "umap", "tsne"]
PROJECTION_METHODS: tuple[str, ...] = ("pca", "umap", "tsne")
METHOD_TITLES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
TSNE_NEIGHBOURS = 10

# numba compiles UMAP's kernels on the first fit in a process (~20 s on 2 cores); later fits skip it.
_umap_compiled = False
_umap_lock = threading.Lock()


@dataclass(frozen=True)
class ProjectionParams:
    """Everything that changes a projection; hashable so pages can cache fitted maps by it."""

    method: Method = "pca"
    seed: int = 0
    n_neighbors: int = 15  # UMAP: local (small) versus global (large) structure
    min_dist: float = 0.1  # UMAP: how tightly points may pack
    metric: str = "cosine"  # UMAP: cosine suits sentence embeddings
    perplexity: float = 30.0  # t-SNE: effective number of neighbours
    max_iter: int = 1000  # t-SNE optimisation steps

    def relevant(self) -> dict[str, Any]:
        """Only the parameters the chosen method uses (for captions, cache keys and result files)."""
        keep = {"pca": ("seed",), "umap": ("seed", "n_neighbors", "min_dist", "metric"),
                "tsne": ("seed", "perplexity", "max_iter")}[self.method]
        return {k: v for k, v in asdict(self).items() if k in keep}

    def describe(self) -> str:
        return f"{METHOD_TITLES[self.method]} (" + ", ".join(f"{k}={v}" for k, v in self.relevant().items()) + ")"


@dataclass
class Projection:
    """A fitted 2-D map of ``n`` vectors that can place further vectors in the same space."""

    params: ProjectionParams
    coords: np.ndarray  # (n, 2) float32
    seconds: float
    model: Any = None  # fitted PCA / UMAP; None for t-SNE
    train: np.ndarray | None = field(default=None, repr=False)  # t-SNE/UMAP: the fitted vectors, for neighbour placement
    notes: list[str] = field(default_factory=list)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(m, 2) positions of new vectors in this map (see the module docstring for t-SNE)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        if self.params.method in ("tsne", "umap"):
            return place_by_neighbours(vectors, self.train, self.coords, TSNE_NEIGHBOURS)
        return np.asarray(self.model.transform(vectors), dtype=np.float32)


def place_by_neighbours(vectors: np.ndarray, train: np.ndarray, coords: np.ndarray, k: int) -> np.ndarray:
    """Similarity-weighted mean of the 2-D positions of each vector's k most similar training vectors.

    Vectors are L2-normalised, so a dot product is a cosine. Weights are the (clipped) cosines, so a near-duplicate
    text pulls the point almost onto itself.
    """
    k = max(1, min(k, len(train)))
    sims = vectors @ train.T  # (m, n)
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sims, idx, axis=1)
    weights = np.clip(top, 1e-6, None)
    weights = weights / weights.sum(axis=1, keepdims=True)
    return np.einsum("mk,mkd->md", weights, coords[idx]).astype(np.float32)


def umap_needs_compile() -> bool:
    """True until the first UMAP fit of this process, so the page can warn that the first one is slow."""
    return not _umap_compiled


def _check(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise DataError("Embeddings must be a 2-D array (one row per text).")
    if len(vectors) < 3:
        raise DataError(f"A map needs at least 3 texts; the data has {len(vectors)}.")
    if not np.isfinite(vectors).all():
        raise DataError("Some embeddings are not finite numbers; re-embed the texts.")
    return vectors


def fit_projection(vectors: np.ndarray, params: ProjectionParams) -> Projection:
    """Fit the chosen method on the text embeddings. Parameters too large for tiny data are reduced, with a note."""
    global _umap_compiled
    vectors = _check(vectors)
    n = len(vectors)
    notes: list[str] = []
    start = time.perf_counter()
    if params.method == "pca":
        from sklearn.decomposition import PCA

        model = PCA(n_components=2, random_state=params.seed)
        coords = model.fit_transform(vectors)
        var = model.explained_variance_ratio_.sum()
        notes.append(f"The two PCA axes explain {var:.0%} of the variance; clusters may overlap that other methods separate.")
        proj = Projection(params, coords.astype(np.float32), 0.0, model=model, notes=notes)
    elif params.method == "umap":
        if params.n_neighbors < 2:
            raise UserError("UMAP needs n_neighbors of at least 2.")
        n_neighbors = min(params.n_neighbors, n - 1)
        if n_neighbors != params.n_neighbors:
            notes.append(f"n_neighbors reduced to {n_neighbors}: the data has only {n} texts.")
        import umap  # imported here: the import alone takes seconds

        model = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=params.min_dist, metric=params.metric,
                          random_state=params.seed, init="spectral" if n > n_neighbors + 2 else "random",
                          n_jobs=1)  # a seed forces one thread anyway; saying so silences umap's warning
        with _umap_lock:
            coords = model.fit_transform(vectors)
            _umap_compiled = True
        proj = Projection(params, np.asarray(coords, dtype=np.float32), 0.0, model=model, train=vectors, notes=notes)
    elif params.method == "tsne":
        from sklearn.manifold import TSNE

        # sklearn requires perplexity < n; a perplexity near n flattens the map, so cap at a third of n.
        perplexity = float(min(params.perplexity, max(1.0, (n - 1) / 3)))
        if perplexity != params.perplexity:
            notes.append(f"perplexity reduced to {perplexity:.0f}: the data has only {n} texts.")
        if params.max_iter < 250:
            raise UserError("t-SNE needs at least 250 iterations.")
        model = TSNE(n_components=2, perplexity=perplexity, max_iter=params.max_iter, metric="cosine", init="pca",
                     random_state=params.seed)
        coords = model.fit_transform(vectors)
        notes.append(f"t-SNE cannot transform new points: labels and queries are placed at the similarity-weighted "
                     f"mean position of their {TSNE_NEIGHBOURS} most similar texts.")
        proj = Projection(params, coords.astype(np.float32), 0.0, model=None, train=vectors, notes=notes)
    else:
        raise UserError(f"Unknown projection method '{params.method}'. Choose one of: {', '.join(PROJECTION_METHODS)}.")
    proj.seconds = time.perf_counter() - start
    return proj


def sample_positions(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted row positions of a seeded sample of at most ``max_points`` rows (all rows when the data is smaller)."""
    if max_points < 3:
        raise UserError("The map needs at least 3 points; raise the point limit.")
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False))
