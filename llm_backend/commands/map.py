"""``map``: embed a table's texts, project them to 2-D, cluster them, and write x, y, cluster next to the data.

The same backend as the Embedding map page, for data too large to explore in a browser or for a pipeline. The
cluster summary (size, c-TF-IDF keywords, candidate label name) goes to stdout; progress goes to stderr.
"""
from __future__ import annotations

from llm_backend.data.files import to_csv_safe

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from llm_backend.core.errors import DataError, UserError
from llm_backend.core.progress import stderr_progress
from llm_backend.data.files import (
    guess_text_column,
    read_path,
    sample_rows,
    text_column_report,
)
from llm_backend.maps.clustering import CLUSTER_SPACES, NOISE, ClusterParams, find_clusters
from llm_backend.maps.projection import PROJECTION_METHODS, ProjectionParams


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("map", help="2-D map (PCA/UMAP/t-SNE) and clusters of a table's texts, written as CSV",
                       description="Embed the texts, project them to 2-D and cluster them. Writes a CSV with "
                                   "x, y, cluster followed by the data's columns.")
    p.add_argument("--data", required=True, help="CSV/TSV/XLSX/JSON/JSONL/Parquet file")
    p.add_argument("--sheet", help="sheet of an Excel workbook (default: the first)")
    p.add_argument("--encoding", help="text encoding of a CSV/JSON file (default: detected)")
    p.add_argument("--text-column", help="column with the texts (default: the column with the longest values)")
    p.add_argument("--out", required=True, help="output CSV path")
    p.add_argument("--method", choices=PROJECTION_METHODS, default="pca", help="projection (default: pca)")
    p.add_argument("--clusters", type=int, default=8, metavar="K", help="k-means clusters (default: 8)")
    p.add_argument("--cluster-method", choices=("kmeans", "hdbscan"), default="kmeans",
                   help="kmeans on the embeddings, or hdbscan on the 2-D map (default: kmeans)")
    p.add_argument("--min-cluster-size", type=int, default=10, help="HDBSCAN: smallest cluster (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling, projection and k-means (default: 0)")
    p.add_argument("--limit", type=int, help="use a seeded random sample of at most N rows")
    p.add_argument("--model", help="embedder: registered name or local folder (default: all-MiniLM-L6-v2)")
    p.add_argument("--n-neighbors", type=int, default=15, help="UMAP n_neighbors (default: 15)")
    p.add_argument("--min-dist", type=float, default=0.1, help="UMAP min_dist (default: 0.1)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default: 30)")
    p.add_argument("--gold-column", help="optional gold-label column: prints cluster purity against it")
    p.add_argument("--json", action="store_true", help="print the cluster summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm_backend.maps.embedding_map import build_map
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry

    table = read_path(args.data, sheet=args.sheet, encoding=args.encoding)
    df = table.df
    text_col = args.text_column or guess_text_column(df)
    if text_col not in df.columns:
        raise DataError(f"No column '{text_col}' in {Path(args.data).name}. Columns: {', '.join(map(str, df.columns))}")
    if args.gold_column and args.gold_column not in df.columns:
        raise DataError(f"No gold column '{args.gold_column}'. Columns: {', '.join(map(str, df.columns))}")
    if args.limit is not None:
        df = sample_rows(df, args.limit, args.seed)
    out_path = Path(args.out)
    if out_path.suffix.lower() != ".csv":
        raise UserError("--out must be a .csv file.")
    if args.cluster_method == "kmeans" and not 2 <= args.clusters <= len(df):
        raise UserError(f"k-means cannot make {args.clusters} clusters from {len(df)} rows; choose 2 ≤ K ≤ {len(df)}.")
    texts, notes = text_column_report(df[text_col])
    for note in notes + table.notes:
        print(f"note: {note}", file=sys.stderr)

    spec = ModelRegistry().resolve(args.model, "embedder")
    if spec.role != "embedder":
        raise UserError(f"'{spec.name}' is a {spec.role}, not a sentence embedder.")
    embedder = get_model(spec)
    params = ProjectionParams(method=args.method, seed=args.seed, n_neighbors=args.n_neighbors,
                              min_dist=args.min_dist, perplexity=args.perplexity)
    result = build_map(embedder, texts, params, progress=stderr_progress("embedding"))
    coords = result.projection.coords
    gold = [str(g) for g in df[args.gold_column].tolist()] if args.gold_column else None
    # k-means on the full embeddings, HDBSCAN on the 2-D map: the page's defaults (see CLUSTER_SPACES).
    if args.cluster_method == "kmeans":
        cp, space = ClusterParams("kmeans", k=args.clusters, seed=args.seed), CLUSTER_SPACES[0]
    else:
        cp, space = ClusterParams("hdbscan", min_cluster_size=args.min_cluster_size, seed=args.seed), CLUSTER_SPACES[1]
    found = find_clusters(texts, result.vectors, coords, cp, space, gold)
    ids = found.ids

    out = df.copy()
    for col in ("x", "y", "cluster"):
        if col in out.columns:
            out = out.rename(columns={col: f"{col}_data"})
    out.insert(0, "cluster", ids)
    out.insert(0, "y", np.round(coords[:, 1], 5))
    out.insert(0, "x", np.round(coords[:, 0], 5))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    to_csv_safe(out, out_path)

    summaries = found.summaries
    report = {
        "rows": len(df), "projection": params.describe(), "clustering": cp.describe(), "out": str(out_path),
        "noise_rows": int((ids == NOISE).sum()),
        "scores": found.scores,
        "clusters": [{"cluster": s.cluster, "size": s.size, "name": s.name, "keywords": s.keywords,
                      **({"majority_gold": s.majority_gold, "share": round(s.gold_share, 3)} if gold else {})}
                     for s in summaries],
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(df):,} rows · {report['projection']} · {report['clustering']} → {out_path}")
    if report["scores"]:
        sc = report["scores"]
        print(f"against '{args.gold_column}': purity {sc['purity']:.3f}, NMI {sc['nmi']:.3f}, ARI {sc['ari']:.3f}")
    if report["noise_rows"]:
        print(f"noise (cluster -1): {report['noise_rows']} rows")
    print(f"{'cluster':>7}  {'size':>6}  {'candidate label':<28}  keywords")
    for c in report["clusters"]:
        print(f"{c['cluster']:>7}  {c['size']:>6}  {c['name']:<28}  {', '.join(c['keywords'])}")
    return 0
