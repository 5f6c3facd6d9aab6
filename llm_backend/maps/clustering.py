"""Unsupervised discovery of categories: cluster the embeddings, describe each cluster, offer it as a label.

An analyst with no label set yet asks "what is in here?". Clusters answer with groups; c-TF-IDF keywords and the
texts nearest each centroid say what a group is about, and turn it into a candidate :class:`Label` in one click.

* **k-means** needs k but puts every text in a cluster. On L2-normalised embeddings Euclidean k-means is
  equivalent to clustering by cosine.
* **HDBSCAN** (scikit-learn's) finds the number of clusters itself and leaves outliers as noise (``-1``). It works
  best on a lower-dimensional space; the caller chooses the input (full embeddings or the 2-D map).

c-TF-IDF (as in BERTopic): concatenate each cluster's texts into one document, count words with
``CountVectorizer`` (English stop words removed; Chinese is segmented with jieba, see :mod:`llm_backend.data.words`), and weight the counts with ``TfidfTransformer`` (sublinear tf) across clusters,
so a word ranks high when it is frequent in one cluster and rare in the others.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from llm_backend.core.errors import DataError, UserError
from llm_backend.data.labels import Label

ClusterMethod = Literal["kmeans", "hdbscan"]
NOISE = -1


@dataclass(frozen=True)
class ClusterParams:
    method: ClusterMethod = "kmeans"
    k: int = 8
    min_cluster_size: int = 10  # HDBSCAN: the smallest group worth calling a category
    min_samples: int | None = None  # HDBSCAN: larger = more conservative, more noise
    seed: int = 0

    def describe(self) -> str:
        if self.method == "kmeans":
            return f"k-means (k={self.k}, seed={self.seed})"
        return f"HDBSCAN (min_cluster_size={self.min_cluster_size}, min_samples={self.min_samples or 'auto'})"


def cluster(vectors: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Cluster ids per row (``-1`` = noise, HDBSCAN only)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if vectors.ndim != 2 or n < 2:
        raise DataError("Clustering needs at least 2 texts.")
    if params.method == "kmeans":
        from sklearn.cluster import KMeans

        if params.k < 2:
            raise UserError("k-means needs k of at least 2.")
        if params.k > n:
            raise UserError(f"k-means cannot make {params.k} clusters from {n} texts; choose k ≤ {n}.")
        # Ten restarts: one k-means++ start often merges two topics on small data; restarts cost little here.
        return KMeans(n_clusters=params.k, n_init=10, random_state=params.seed).fit_predict(vectors).astype(int)
    if params.method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        if params.min_cluster_size < 2:
            raise UserError("HDBSCAN needs a minimum cluster size of at least 2.")
        if params.min_cluster_size > n:
            raise UserError(f"The minimum cluster size ({params.min_cluster_size}) is larger than the data ({n} texts).")
        model = HDBSCAN(min_cluster_size=params.min_cluster_size, min_samples=params.min_samples, copy=True)
        return model.fit_predict(vectors).astype(int)
    raise UserError(f"Unknown clustering method '{params.method}'. Choose kmeans or hdbscan.")


def purity(gold: Sequence[str], clusters: Sequence[int], ignore_noise: bool = True) -> float:
    """Share of rows whose cluster's majority gold class is their own class (1.0 = every cluster is one class).

    Purity rises with the number of clusters, so read it next to :func:`cluster_scores`' NMI/ARI and the cluster
    count. Noise rows are left out when ``ignore_noise`` (HDBSCAN reports them separately).
    """
    gold_arr = np.asarray([str(g) for g in gold])
    cl = np.asarray(clusters)
    if ignore_noise:
        keep = cl != NOISE
        gold_arr, cl = gold_arr[keep], cl[keep]
    if len(cl) == 0:
        return 0.0
    table = contingency_matrix(gold_arr, cl)  # (classes, clusters)
    return float(table.max(axis=0).sum() / table.sum())


def cluster_scores(gold: Sequence[str], clusters: Sequence[int]) -> dict[str, float]:
    """Purity, NMI and ARI against gold (noise excluded) plus cluster count and noise share."""
    cl = np.asarray(clusters)
    gold_arr = np.asarray([str(g) for g in gold])
    keep = cl != NOISE
    n_clusters = len(set(cl[keep].tolist()))
    if keep.sum() == 0:
        return {"purity": 0.0, "nmi": 0.0, "ari": 0.0, "clusters": 0, "noise": 1.0}
    return {
        "purity": purity(gold_arr, cl),
        "nmi": float(normalized_mutual_info_score(gold_arr[keep], cl[keep])),
        "ari": float(adjusted_rand_score(gold_arr[keep], cl[keep])),
        "clusters": n_clusters,
        "noise": float(1.0 - keep.mean()),
    }


def cluster_keywords(texts: Sequence[str], clusters: Sequence[int], top_n: int = 6) -> dict[int, list[str]]:
    """Top c-TF-IDF words per cluster (noise gets no keywords but takes part in the IDF, discounting common words)."""
    from sklearn.feature_extraction.text import TfidfTransformer

    from llm_backend.data.words import word_vectorizer

    cl = np.asarray(clusters)
    ids = sorted(set(cl.tolist()))
    if not ids:
        return {}
    texts_arr = np.asarray([str(t) for t in texts], dtype=object)
    docs = [" ".join(texts_arr[cl == c]) for c in ids]
    vectorizer = word_vectorizer(list(texts_arr))  # jieba segmentation for Chinese, English rules otherwise
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # every text empty or only stop words
        return {c: [] for c in ids if c != NOISE}
    # sublinear tf: a word said 40 times in a big cluster ("said", "new") should not outrank a distinctive one.
    weights = TfidfTransformer(sublinear_tf=True).fit_transform(counts).toarray()
    vocab = vectorizer.get_feature_names_out()
    out: dict[int, list[str]] = {}
    for row, c in enumerate(ids):
        if c == NOISE:
            continue
        order = np.argsort(-weights[row], kind="stable")[:top_n]
        out[c] = [str(vocab[i]) for i in order if weights[row, i] > 0]
    return out


def centroid_examples(vectors: np.ndarray, clusters: Sequence[int], n: int = 3) -> dict[int, list[int]]:
    """Row positions of the ``n`` texts most similar (cosine) to each cluster's mean direction."""
    vectors = np.asarray(vectors, dtype=np.float32)
    cl = np.asarray(clusters)
    out: dict[int, list[int]] = {}
    for c in sorted(set(cl.tolist()) - {NOISE}):
        members = np.flatnonzero(cl == c)
        centre = vectors[members].mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        unit = vectors[members] / np.clip(np.linalg.norm(vectors[members], axis=1, keepdims=True), 1e-12, None)
        sims = unit @ centre
        out[c] = members[np.argsort(-sims, kind="stable")[:n]].tolist()
    return out


@dataclass
class ClusterSummary:
    """What a cluster is about, ready to show as a row and to become a candidate label."""

    cluster: int
    size: int
    keywords: list[str]
    examples: list[str]
    name: str
    majority_gold: str | None = None
    gold_share: float | None = None  # share of the cluster's rows with the majority gold label
    example_rows: list[int] = field(default_factory=list)

    def to_label(self) -> Label:
        """A candidate label: a short name from the top keywords, a description from all keywords."""
        desc = "Texts about " + ", ".join(self.keywords) if self.keywords else f"Texts of cluster {self.cluster}"
        return Label(name=self.name, description=desc)


def label_name(keywords: Sequence[str], cluster_id: int, words: int = 2) -> str:
    """'oil_prices' from ['oil', 'prices', ...]: readable, and humanised back to 'oil prices' for the models."""
    picked = [re.sub(r"\W+", "", w.lower()) for w in keywords[:words]]
    picked = [w for w in picked if w]
    return "_".join(picked) if picked else f"cluster_{cluster_id}"


def summarise_clusters(
    texts: Sequence[str],
    vectors: np.ndarray,
    clusters: Sequence[int],
    gold: Sequence[str] | None = None,
    top_n: int = 6,
    n_examples: int = 3,
) -> list[ClusterSummary]:
    """One summary per cluster, largest first, with unique candidate names."""
    cl = np.asarray(clusters)
    keywords = cluster_keywords(texts, cl, top_n)
    examples = centroid_examples(vectors, cl, n_examples)
    gold_arr = np.asarray([str(g) for g in gold]) if gold is not None else None
    out: list[ClusterSummary] = []
    used: set[str] = set()
    ids, sizes = np.unique(cl[cl != NOISE], return_counts=True)
    for c, size in sorted(zip(ids.tolist(), sizes.tolist()), key=lambda p: (-p[1], p[0])):
        kw = keywords.get(c, [])
        name = label_name(kw, c)
        if name in used:  # two clusters with the same top words: add the next keyword, then the id
            name = label_name(kw, c, words=3)
            if name in used:
                name = f"{name}_{c}"
        used.add(name)
        majority = share = None
        if gold_arr is not None:
            values, counts = np.unique(gold_arr[cl == c], return_counts=True)
            majority, share = str(values[counts.argmax()]), float(counts.max() / size)
        out.append(ClusterSummary(c, int(size), kw, [str(texts[i]) for i in examples.get(c, [])], name, majority,
                                  share, examples.get(c, [])))
    return out


# --- one clustering run, as the map page and the CLI do it --------------------------------------------------------
#: What to cluster: the full embeddings (k-means' default) or the 2-D map (HDBSCAN's default: density is far easier
#: to find in two dimensions; on 384-d MiniLM vectors most texts come out as noise).
CLUSTER_SPACES = ("full embeddings", "the 2-D map")


@dataclass
class ClusterFinding:
    """One clustering of a map's points: ids per point, summaries largest first, and scores against gold if any."""

    ids: np.ndarray
    params: ClusterParams
    space: str
    summaries: list[ClusterSummary]
    scores: dict[str, float] | None = None

    @property
    def n_clusters(self) -> int:
        return len(set(self.ids.tolist()) - {NOISE})

    def run_settings(self, projection: str, n_points: int) -> dict[str, object]:
        """The settings recorded in the experiment store: only the parameter the method uses is set."""
        p = self.params
        return {"projection": projection, "cluster_on": self.space, "k": p.k if p.method == "kmeans" else None,
                "min_cluster_size": p.min_cluster_size if p.method == "hdbscan" else None, "seed": p.seed,
                "n_points": n_points}

    def run_metrics(self) -> dict[str, float]:
        """Purity/NMI/ARI against gold when there is gold, else just the number of clusters."""
        return self.scores or {"clusters": self.n_clusters}


def find_clusters(texts: Sequence[str], vectors: np.ndarray, coords: np.ndarray, params: ClusterParams,
                  space: str = CLUSTER_SPACES[0], gold: Sequence[str] | None = None) -> ClusterFinding:
    """Cluster ``vectors`` (or the 2-D ``coords``), summarise each cluster and score it against ``gold``."""
    if space not in CLUSTER_SPACES:
        raise UserError(f"Cluster on one of: {', '.join(CLUSTER_SPACES)}.")
    ids = cluster(vectors if space == CLUSTER_SPACES[0] else coords, params)
    return ClusterFinding(ids, params, space, summarise_clusters(texts, vectors, ids, gold),
                          cluster_scores(gold, ids) if gold else None)


def default_k(gold: Sequence[str] | None, fallback: int = 8, most: int = 50) -> int:
    """As many clusters as gold classes (so purity compares like with like), else ``fallback``; 2..``most``."""
    n_classes = len({g for g in gold if g}) if gold else fallback
    return min(max(2, n_classes), most)


def default_min_cluster_size(n_points: int) -> int:
    """1% of the points, at least 5: smaller groups are rarely a category worth naming."""
    return max(5, n_points // 100)


def cluster_table(summaries: Sequence[ClusterSummary], example_chars: int = 120) -> list[dict[str, object]]:
    """One row per cluster for a table: size, candidate label, keywords, central texts (cut), majority gold."""
    return [{"cluster": s.cluster, "size": s.size, "candidate label": s.name, "keywords": ", ".join(s.keywords),
             "texts nearest the centre": " ‖ ".join(t[:example_chars] for t in s.examples),
             **({"majority gold": s.majority_gold, "share": round(s.gold_share, 2)}
                if s.majority_gold is not None else {})} for s in summaries]
