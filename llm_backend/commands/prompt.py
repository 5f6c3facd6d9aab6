"""``python -m llm_backend prompt``: run a prompt template (YAML) over a data file and write predictions.

The same template file the page saves and loads; results are a CSV (row, text, gold, pred, probabilities or the
generated text) and, with a gold column, metrics as JSON.
"""
from __future__ import annotations

from llm_backend.data.files import to_csv_safe

import argparse
import json
from pathlib import Path

from llm_backend.core.errors import UserError
from llm_backend.core.progress import stderr_progress
from llm_backend.prompts.lm_scoring import NORMALIZE
from llm_backend.prompts.runner import DEFAULT_PROMPT_CALIBRATION, PROMPT_CALIBRATIONS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prompt", help="run a prompt template over a data file (score, cloze or generate)",
                              description=__doc__)
    p.add_argument("--data", required=True, help="CSV/TSV/JSON/Excel file with a text column")
    p.add_argument("--sheet", help="sheet of an Excel workbook (default: the first)")
    p.add_argument("--encoding", help="text encoding of a CSV/JSON file (default: detected)")
    p.add_argument("--template-file", required=True, help="template YAML (name, template, verbalizer, few_shot)")
    p.add_argument("--mode", choices=("score", "cloze", "generate"), default=None,
                   help="default: the template's mode (score)")
    p.add_argument("--model", default=None, help="model name from `models`, a model folder or a hub id (causal LM; "
                   "masked LM for cloze); default: the prompt-scoring default LM")
    p.add_argument("--text-column", default=None)
    p.add_argument("--gold-column", default=None)
    p.add_argument("--calibration", choices=PROMPT_CALIBRATIONS, default=DEFAULT_PROMPT_CALIBRATION,
                   help="score/cloze: centering (default; contextual below 10 rows), contextual, pmi "
                        "(domain-conditional PMI) or none")
    add_prompt_options(p)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    p.add_argument("--out", required=True, help="predictions CSV")
    p.add_argument("--metrics-json", default=None)
    p.set_defaults(func=run)


def add_prompt_options(p: argparse.ArgumentParser) -> None:
    """The options that shape a prompt run beyond data and model; ``freeze --template-file`` takes the same ones."""
    p.add_argument("--few-shot", type=int, default=None, help="examples per label (default: the template's)")
    p.add_argument("--selection", choices=("random", "nearest"), default="random")
    p.add_argument("--normalize", choices=NORMALIZE, default="mean",
                   help="answer words of several tokens: mean log-prob per token (default), sum, or first token")
    p.add_argument("--no-prefix-cache", action="store_true",
                   help="run every prompt in full (the shared-prefix KV cache gives the same scores, faster)")
    p.add_argument("--seed", type=int, default=0)


def run_template(args: argparse.Namespace, mode: str | None = None, progress_label: str = ""):
    """Read the data and template, load the model and run the template: what ``prompt`` and ``freeze`` share.

    Returns ``(result, model)``: the :class:`~llm_backend.prompts.runner.PromptRunResult` and the loaded LM.
    """
    from llm_backend.data.files import guess_text_column, read_path
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.prompts.runner import RunConfig, TemplateRun, default_prompt_model
    from llm_backend.prompts.templates import load_template_file

    tpl = load_template_file(args.template_file)
    table = read_path(args.data, sheet=args.sheet, encoding=args.encoding)
    df = table.df
    text_col = args.text_column or guess_text_column(df)
    gold_col = args.gold_column
    if text_col not in df.columns:
        raise UserError(f"No column '{text_col}' in {Path(args.data).name}. Columns: {', '.join(map(str, df.columns))}.")
    mode = mode or tpl.mode
    reg = ModelRegistry()
    role = "masked_lm" if mode == "cloze" else "causal_lm"
    model = get_model(reg.resolve(args.model, role) if args.model else default_prompt_model(reg, role))
    embedder = get_model(reg.default("embedder")) if args.selection == "nearest" else None
    cfg = RunConfig(mode=mode, few_shot=args.few_shot, selection=args.selection, seed=args.seed,
                    calibration=args.calibration, max_new_tokens=getattr(args, "max_new_tokens", 16),
                    temperature=getattr(args, "temperature", 0.0), limit=args.limit, normalize=args.normalize,
                    share_prefix=not args.no_prefix_cache)
    runner = TemplateRun(tpl, df, text_col, gold_col, cfg, lm=model if role == "causal_lm" else None,
                         masked_lm=model if role == "masked_lm" else None, embedder=embedder)
    return runner.run_all(progress=stderr_progress(progress_label or f"{tpl.name} ({mode})")), model


def run(args: argparse.Namespace) -> int:
    result, _ = run_template(args, args.mode)
    mode = result.mode
    tpl = result.template
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    to_csv_safe(result.frame(), out)
    for note in result.notes:
        print(f"note: {note}")
    summary = {"template": tpl.name, "mode": mode, "rows": len(result.rows), "seconds": round(result.seconds, 2),
               "unmapped": result.n_unmapped, "notes": result.notes}
    if result.metrics is not None:
        summary.update(accuracy=result.metrics["accuracy"], macro_f1=result.metrics["macro_f1"])
        print(f"accuracy {result.metrics['accuracy']:.3f}  macro-F1 {result.metrics['macro_f1']:.3f}  "
              f"on {result.metrics['n']} rows")
    if args.metrics_json:
        Path(args.metrics_json).write_text(json.dumps({**summary, "metrics": result.metrics}, indent=2, default=str))
    print(f"wrote {len(result.rows)} rows to {out.name}")
    return 0
