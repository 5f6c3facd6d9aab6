"""The bad-input corpus: every kind of broken input an analyst can give, run through the real backend.

Each case must end in a :class:`UserError` whose message is clear (says what is wrong), carries no traceback text
and shows no absolute path — or, for inputs that are odd but usable, return notes that say what was guessed.
Files live in ``tests/bad_inputs/`` (small, checked in); cases that need other helpers' modules skip until those
modules exist.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from llm_backend.core.errors import UserError
from llm_backend.core.paths import has_absolute_path

BAD = Path(__file__).resolve().parent / "bad_inputs"


@dataclass
class Case:
    id: str
    run: Callable[[Path], Any]  # gets a scratch folder; raises, or returns notes (list[str])
    match: str  # regex the message (or the joined notes) must contain
    notes: bool = False  # True: the input is usable and must come back with notes instead of an error
    xfail: str = ""


def _read(name: str, **kw: Any) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        from llm_backend.data.files import read_table

        return read_table((BAD / name).read_bytes(), name, **kw).notes

    return go


def _read_text_notes(name: str) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        from llm_backend.data.files import read_table, text_column_report

        table = read_table((BAD / name).read_bytes(), name)
        return table.notes + text_column_report(table.df["text"])[1]

    return go


def _huge_line(tmp: Path) -> Any:
    from llm_backend.data.files import read_table

    return read_table(b"text,label\n" + b"x" * (3 * 1024 * 1024) + b",a\n", "huge.csv", max_bytes=1024 * 1024)


def _labels(fn: Callable[[], Any]) -> Callable[[Path], Any]:
    return lambda _: fn()


def _make(items: Any) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        from llm_backend.data.labels import make_labels

        return make_labels(items)

    return go


def _label_file(name: str) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        from llm_backend.data.labels import load_labels_text

        return load_labels_text((BAD / name).read_text(encoding="utf-8"))

    return go


def _single_label(_: Path) -> Any:
    from llm_backend.data.labels import check_label_count, make_labels

    check_label_count(make_labels(["only one"]), multi_label=False)


def _workshop(fn: Callable[[], Any]) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        os.environ["ZSS_WORKSHOP_MODE"] = "1"
        try:
            return fn()
        finally:
            del os.environ["ZSS_WORKSHOP_MODE"]

    return go


def _too_many_labels() -> Any:
    from llm_backend.core import workshop
    from llm_backend.data.labels import make_labels

    labels = make_labels([f"label {i}" for i in range(500)])  # fine outside a workshop...
    workshop.check_labels(len(labels))  # ...too many inside one


def _too_many_rows() -> Any:
    from llm_backend.core import workshop
    from llm_backend.data.files import load_sample

    workshop.check_rows(len(load_sample("Support tickets").df) * 20)


def _model_folder(setup: Callable[[Path], str]) -> Callable[[Path], Any]:
    def go(tmp: Path) -> Any:
        from llm_backend.core.paths import safe_model_folder

        return safe_model_folder(setup(tmp), roots=[tmp])

    return go


def _folder_with(files: dict[str, bytes]) -> Callable[[Path], str]:
    def setup(tmp: Path) -> str:
        folder = tmp / "model"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return "model"

    return setup


def _load_config_without_weights(tmp: Path) -> Any:
    from llm_backend.core.paths import safe_model_folder
    from llm_backend.models.loading import load_model

    folder = tmp / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                    "model_type": "bert", "id2label": {"0": "a", "1": "b"}}))
    load_model(safe_model_folder("model", roots=[tmp]))


def _hub_offline(_: Path) -> Any:
    from llm_backend.models.registry import spec_from_hub

    os.environ["HF_HUB_OFFLINE"] = "1"
    return spec_from_hub("some-org/model-that-is-not-cached", "embedder")


def _registry(fn: Callable[[Any], Any]) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        from llm_backend.models.registry import ModelRegistry

        return fn(ModelRegistry())

    return go


def _safe(user: str) -> Callable[[Path], Any]:
    def go(tmp: Path) -> Any:
        from llm_backend.core.paths import safe_path

        (tmp / "inside").mkdir(exist_ok=True)
        return safe_path(user, [tmp / "inside"])

    return go


def _symlink_escape(tmp: Path) -> Any:
    from llm_backend.core.paths import safe_path

    (tmp / "inside").mkdir()
    (tmp / "outside").mkdir()
    (tmp / "inside" / "link").symlink_to(tmp / "outside", target_is_directory=True)
    return safe_path("link", [tmp / "inside"])


def _store_file(name: str) -> Callable[[Path], Any]:
    def go(tmp: Path) -> Any:
        from llm_backend.store.database import Store

        target = tmp / "studio.db"
        target.write_bytes((BAD / name).read_bytes())
        return Store(target)

    return go


def _store_newer(tmp: Path) -> Any:
    from llm_backend.store.database import Store

    conn = sqlite3.connect(tmp / "studio.db")
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    return Store(tmp / "studio.db")


def _store_is_folder(tmp: Path) -> Any:
    from llm_backend.store.database import Store

    (tmp / "studio.db").mkdir()
    return Store(tmp / "studio.db")


def _store_import(payload: bytes) -> Callable[[Path], Any]:
    def go(tmp: Path) -> Any:
        from llm_backend.store.database import Store

        return Store(tmp / "s.db").import_project(payload)

    return go


def _store_unknown_project(tmp: Path) -> Any:
    from llm_backend.store.database import Store

    return Store(tmp / "s.db").project_id("nope")


def _store_concurrent(tmp: Path) -> Any:
    """Not an error case: 6 threads writing at once must all land, and we return a note saying so."""
    from llm_backend.store.database import Store

    s = Store(tmp / "s.db")
    pid = s.ensure_project("p")
    errors: list[BaseException] = []

    def w() -> None:
        try:
            for _ in range(15):
                s.record_run(pid, "zero-shot", "x", "m", {}, {"accuracy": 1})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=w) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    return [f"{len(s.list_runs(pid))} runs written by 6 threads"]


def _train(**cfg: Any) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        trainer = pytest.importorskip("llm_backend.training.trainer")
        return trainer.TrainConfig(**cfg).resolved()

    return go


def _train_data(texts: list[str], labels: list[Any]) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        sampler = pytest.importorskip("llm_backend.data.sampler")
        return sampler.prepare_training_set(texts, labels, min_per_class=2)

    return go


def _lm_template(template: str) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        lm = pytest.importorskip("llm_backend.scorers.lm")
        return lm.LMVerbalizerScorer(None, template=template)  # the template is checked before the model is used

    return go


def _prompting(template: str) -> Callable[[Path], Any]:
    """Check a prompt template against a dataset's columns, then render it on one row, as a run does."""
    def go(_: Path) -> Any:
        from llm_backend.prompts.templates import check_template, render, row_context

        check_template(template, ["text", "stars"])
        return render(template, row_context({"text": "Great phone", "stars": "5"}, "Great phone"),
                      {"positive": ["great"], "negative": ["bad"]})

    return go


CASES: list[Case] = [
    # ---------------------------------------------------------------------------------------------- files
    Case("file-empty", _read("empty.csv"), "empty"),
    Case("file-whitespace-only", _read("whitespace_only.csv"), "empty"),
    Case("file-header-only", _read("header_only.csv"), "header .*no rows"),
    Case("file-binary-garbage", _read("binary_garbage.csv"), "encoding"),
    Case("file-wrong-encoding-forced", _read("cp1252.csv", encoding="utf-8"), "cannot be read as utf-8"),
    Case("file-unknown-encoding-name", _read("cp1252.csv", encoding="klingon-8"), "cannot be read as klingon-8"),
    Case("file-cp1252-detected", _read("cp1252.csv"), "not UTF-8", notes=True),
    Case("file-malformed-json", _read("malformed.json"), "malformed at line 1"),
    Case("file-truncated-jsonl", _read("truncated.jsonl"), "malformed"),
    Case("file-truncated-jsonl-line-number", _read("truncated.jsonl"), "line 2"),
    Case("file-json-scalar", _read("scalar.json"), "no records"),
    Case("file-json-empty-list", _read("empty_list.json"), "no records"),
    Case("file-json-mixed-list", _read("mixed_list.json"), "mixes objects"),
    Case("file-json-not-a-table", _read("not_a_table.json"), "not a table"),
    Case("file-xlsx-corrupt", _read("corrupt.xlsx"), "Excel file cannot be opened"),
    Case("file-xlsx-zip-without-workbook", _read("zip_not_xlsx.xlsx"), "Excel file cannot be opened"),
    Case("file-xlsx-is-really-csv", _read("csv_renamed.xlsx"), "Excel file cannot be opened"),
    Case("file-xlsx-missing-sheet", lambda _: __import__("llm_backend.data.files", fromlist=["x"]).read_table(
        _xlsx_bytes(), "book.xlsx", sheet="Nope"), "no sheet 'Nope'"),
    Case("file-parquet-corrupt", _read("corrupt.parquet"), "Parquet file cannot be read"),
    Case("file-unbalanced-quotes", _read("unbalanced_quotes.csv"), "could not be parsed"),
    Case("file-ragged-rows", _read("ragged_rows.csv"), "Expected 2 fields in line 3"),
    Case("file-unsupported-type", _read("unsupported.docx"), "unsupported type '.docx'"),
    Case("file-huge-line-over-limit", _huge_line, "above the upload limit"),
    Case("file-duplicate-columns", _read("duplicate_columns.csv"), "Duplicate column name 'text' renamed", notes=True),
    Case("file-wrong-delimiter", _read("semicolon_as_comma.csv", delimiter=","), "choose that delimiter", notes=True),
    Case("file-empty-texts", _read_text_notes("empty_texts.csv"), "2 of 3 rows have an empty text", notes=True),
    Case("file-numbers-as-text", _read_text_notes("numbers_as_text.csv"), "are numbers", notes=True),
    Case("file-nul-bytes", _read_text_notes("nul_bytes.csv"), "NUL|control",
         notes=True),
    Case("file-missing-path", lambda _: __import__("llm_backend.data.files", fromlist=["x"]).read_path(
        "no/such/file.csv"), "No such file"),
    # --------------------------------------------------------------------------------------------- labels
    Case("labels-empty", _make([]), "label set is empty"),
    Case("labels-whitespace-only", _make(["  ", "\t", ""]), "label set is empty"),
    Case("labels-duplicates", _make(["Billing", "billing ", "Refund"]), "Duplicate labels"),
    Case("labels-duplicates-inner-space", _make(["card  arrival", "card arrival"]), "Duplicate labels"),
    Case("labels-single-in-single-label-mode", _single_label, "at least two labels"),
    Case("labels-500-in-workshop", _workshop(_too_many_labels), "at most 50 labels.*has 500"),
    Case("labels-paste-empty", _labels(lambda: __import__("llm_backend.data.labels", fromlist=["x"]).parse_label_list(
        " \n \n")), "label set is empty"),
    Case("labels-file-bad-yaml", _label_file("bad_labels.yaml"), "not valid YAML"),
    Case("labels-file-not-a-list", _label_file("not_a_list_labels.yaml"), "must hold a list"),
    Case("labels-file-empty-list", _label_file("empty_labels.yaml"), "label set is empty"),
    Case("labels-file-duplicates", _label_file("duplicate_labels.yaml"), "Duplicate labels"),
    Case("labels-file-missing", _labels(lambda: __import__("llm_backend.data.labels", fromlist=["x"]).load_labels_file(
        "missing/labels.yaml")), "No such label file"),
    Case("rows-over-workshop-limit", _workshop(_too_many_rows), "at most 2,000 rows"),
    # ------------------------------------------------------------------------------------------ templates
    Case("template-lm-missing-text-placeholder", _lm_template("Classify this: {label}"), r"\{text\} placeholder"),
    Case("template-unknown-placeholder", _prompting("Text: {{ text }} {{ nonexistent_column }}"), "nonexistent_column"),
    Case("template-missing-text-placeholder", _prompting("Just a sentence."), "text"),
    Case("template-sandbox-escape", _prompting("{{ ''.__class__.__mro__[1].__subclasses__() }} {{ text }}"),
         "not allowed"),
    # -------------------------------------------------------------------------------------------- models
    Case("model-nonexistent-folder", _model_folder(lambda tmp: "does/not/exist"), "No such model folder"),
    Case("model-path-is-a-file", _model_folder(lambda tmp: (tmp.joinpath("w.bin").write_bytes(b"x"), "w.bin")[1]),
         "is a file"),
    Case("model-folder-without-config", _model_folder(_folder_with({"readme.txt": b"hi"})), "not a model folder"),
    Case("model-broken-config-json", _model_folder(_folder_with({"config.json": (BAD / "broken_config.json").read_bytes()})),
         "config.json .* cannot be read"),
    Case("model-config-without-weights", _load_config_without_weights, "Could not load"),
    Case("model-hub-id-offline", _hub_offline, "not in the local model cache"),
    Case("model-hub-id-malformed", _labels(lambda: __import__("llm_backend.models.registry", fromlist=["x"]).spec_from_hub(
        "not a hub id", "embedder")), "not a hub id"),
    Case("model-unknown-name", _registry(lambda r: r.get("gpt-17")), "Unknown model 'gpt-17'"),
    Case("model-path-escapes-roots", _model_folder(lambda tmp: "../../../etc"), "outside the folders"),
    # --------------------------------------------------------------------------------------------- paths
    Case("path-dotdot-escape", _safe("../"), "outside the folders"),
    Case("path-absolute-elsewhere", _safe("/etc/passwd"), "outside the folders"),
    Case("path-symlink-escape", _symlink_escape, "outside the folders"),
    Case("path-empty", _safe("   "), "Type a"),
    Case("path-nul", _safe("a\x00b"), "NUL"),
    # ---------------------------------------------------------------------------------------- training
    Case("train-unknown-method", _train(method="magic"), "Unknown training method 'magic'"),
    Case("train-zero-epochs", _train(method="head", epochs=0), "at least 1"),
    Case("train-validation-share", _train(method="head", val_fraction=0.95), "validation share"),
    Case("train-negative-lr", _train(method="setfit", learning_rate=-1.0), "learning rate must be positive"),
    Case("train-one-class", _train_data(["a", "b", "c", "d"], ["x", "x", "x", "x"]), "class|label"),
    Case("train-no-labels", _train_data(["a", "b"], [None, ""]), "label|rows"),
    # ------------------------------------------------------------------------------------------------ store
    Case("store-corrupted-file", _store_file("corrupt_studio.db"), "damaged"),
    Case("store-text-file", _store_file("not_a_project.json"), "damaged"),
    Case("store-newer-schema", _store_newer, "newer version"),
    Case("store-path-is-a-folder", _store_is_folder, "cannot be opened|damaged"),
    Case("store-import-not-a-project", _store_import((BAD / "not_a_project.json").read_bytes()), "not a Zero-Shot"),
    Case("store-import-garbage", _store_import((BAD / "binary_garbage.csv").read_bytes()), "not UTF-8|not valid JSON"),
    Case("store-unknown-project", _store_unknown_project, "No project named 'nope'"),
    Case("store-concurrent-writes", _store_concurrent, "90 runs written by 6 threads", notes=True),
]


# ------------------------------------------------------------------------------------- hardening round 2 (issue 13)
V = {"positive": ["great"], "negative": ["bad"]}


def _render(template: str, **env: str) -> Callable[[Path], Any]:
    """Render a hostile template through the same function the live preview, prompt runs and the CLI use."""
    def go(_: Path) -> Any:
        from llm_backend.prompts.templates import check_template, render, row_context

        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            check_template(template, ["text", "stars"])
            return render(template, row_context({"text": "Great phone", "stars": "5"}, "Great phone"), V)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    return go


def _template_file(name: str) -> Callable[[Path], Any]:
    def go(_: Path) -> Any:
        from llm_backend.prompts.templates import load_template_file

        return load_template_file(BAD / name)

    return go


def _library_write(where: Callable[[Path], Path]) -> Callable[[Path], Any]:
    """Save into a library folder outside the data folder (home, the app's own templates/): refused."""
    def go(tmp: Path) -> Any:
        from llm_backend.prompts.templates import PromptTemplate, TemplateLibrary

        os.environ["ZSS_DATA_DIR"] = str(tmp / "data")
        try:
            lib = TemplateLibrary(where(tmp))
            return lib.save(PromptTemplate("x", "{{ text }}", {"a": ["a"], "b": ["b"]}))
        finally:
            del os.environ["ZSS_DATA_DIR"]

    return go


def _planted_model(kind: str) -> Callable[[Path], Any]:
    """A model folder someone sent: with code behind ``auto_map``, or with pickled weights only."""
    def go(tmp: Path) -> Any:
        from llm_backend.models.loading import load_model
        from llm_backend.models.registry import spec_from_folder

        folder = tmp / "planted"
        folder.mkdir()
        config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "hidden_size": 8,
                  "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 8, "vocab_size": 30,
                  "id2label": {"0": "a", "1": "b"}, "label2id": {"a": 0, "b": 1}}
        if kind == "auto_map":
            marker = tmp / "code_ran"
            config["model_type"] = "evil-bert"  # unknown to transformers: only its own code could load it
            config["auto_map"] = {"AutoConfig": "evil.EvilConfig",
                                  "AutoModelForSequenceClassification": "evil.EvilModel"}
            (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
        (folder / "config.json").write_text(json.dumps(config))
        if kind == "pickle":
            import torch

            torch.save({"bert.embeddings.word_embeddings.weight": torch.zeros(30, 8)}, folder / "pytorch_model.bin")
        try:
            return load_model(spec_from_folder(folder, role="classifier"))
        finally:
            assert not (tmp / "code_ran").exists(), "code from the model folder ran"

    return go


def _import(doc: Any) -> Callable[[Path], Any]:
    def go(tmp: Path) -> Any:
        from llm_backend.store.database import Store

        payload = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
        store = Store(tmp / "s.db")
        try:
            return store.import_project(payload)
        finally:
            assert store.list_projects() == [], "a refused import wrote something"

    return go


def _project(**sections: Any) -> dict[str, Any]:
    return {"format": "zero-shot-studio/project", "version": 1, "project": {"name": "p"}, **sections}


def _run(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "kind": "zero-shot", "status": "done", **fields}


def _export_escapes(_: Path) -> Any:
    from llm_backend.data.files import read_table, to_csv_safe

    table = read_table((BAD / "formula_cells.csv").read_bytes(), "formula_cells.csv")
    text = to_csv_safe(table.df)
    bad = [line for line in text.splitlines()[1:] if line.lstrip('"').startswith(("=", "+", "@", "\t"))]
    assert not bad, bad
    assert "'=cmd" in text and "'+SUM" in text and "'@IMPORT" in text and "\n-5," in text
    return [f"escaped {text.count(chr(39) + '=') + text.count(chr(39) + '+') + text.count(chr(39) + '@')} formula cells"]


def _big_cell(_: Path) -> Any:
    from llm_backend.data.files import read_table, text_column_report

    table = read_table(b"text,label\n" + b"word " * 220_000 + b",a\nshort,b\n", "big_cell.csv")
    return table.notes + text_column_report(table.df["text"])[1]


def _cli_upload_limit(tmp: Path) -> Any:
    from llm_backend.data.files import read_path

    path = tmp / "big.csv"
    path.write_bytes(b"text,label\n" + b"x,a\n" * 400_000)
    os.environ["ZSS_MAX_UPLOAD_MB"] = "1"
    try:
        return read_path(path)
    finally:
        del os.environ["ZSS_MAX_UPLOAD_MB"]


def _max_rows(_: Path) -> Any:
    from llm_backend.data.files import read_table

    os.environ["ZSS_MAX_ROWS"] = "3"
    try:
        return read_table(b"text,label\n" + b"x,a\n" * 5, "rows.csv")
    finally:
        del os.environ["ZSS_MAX_ROWS"]


def _gzip_bomb(_: Path) -> Any:
    import gzip

    from llm_backend.data.files import read_table

    return read_table(gzip.compress(b"text,label\n" + b"0" * (3 * 1024 * 1024)), "bomb.csv", max_bytes=1024 * 1024)


def _save_kill(stage: str) -> Callable[[Path], Any]:
    """What a kill during save_model leaves, and what the registry makes of it at the next start."""
    def go(tmp: Path) -> Any:
        from llm_backend.models.registry import ModelRegistry
        from llm_backend.training.trained_models import META_FILE, recover_models_folder

        models = tmp / "models"
        models.mkdir()
        meta = json.dumps({"role": "classifier", "labels": ["a", "b"], "format": "embedding_head"})
        if stage == "after-meta":  # killed after zss_model.json was written, before the rename
            (models / ".tmp-m-abcd1234").mkdir()
            (models / ".tmp-m-abcd1234" / META_FILE).write_text(meta)
        else:  # overwrite killed between the two renames: the old copy is aside, the new one not yet in place
            (models / ".old-m-0123abcd").mkdir()
            (models / ".old-m-0123abcd" / META_FILE).write_text(meta)
        os.environ["ZSS_MODELS_DIR"] = str(models)
        try:
            listed_before = [s.name for s in ModelRegistry._trained_models()]
            done = recover_models_folder(models, min_age_s=0)
            listed_after = [s.name for s in ModelRegistry._trained_models()]
        finally:
            del os.environ["ZSS_MODELS_DIR"]
        assert not any(n.startswith(".") for n in listed_before + listed_after), listed_before
        assert not [p for p in models.iterdir() if p.name.startswith(".")], list(models.iterdir())
        if stage == "between-renames":
            assert listed_after == ["m"], listed_after
        return done or ["nothing to do"]

    return go


def _train_empty_texts(_: Path) -> Any:
    from llm_backend.models.loading import get_model
    from llm_backend.models.registry import ModelRegistry
    from llm_backend.training.trainer import TrainConfig, train

    return train(["", " ", "", ""], ["a", "a", "b", "b"], TrainConfig(method="head"),
                 get_model(ModelRegistry().default("embedder")))


CASES += [
    # ----------------------------------------------------------------------------- templates: denial of service
    Case("template-nested-loop-bomb",
         _render("{% set big=[1]*100000 %}{% for a in big %}{% for b in big %}{% endfor %}{% endfor %}{{ text }}"),
         "repeated with \\*|loops ran more than"),
    Case("template-loop-limit", _render("{% set big=[1]*9000 %}{% for a in big %}{% for b in big %}{% endfor %}"
                                        "{% endfor %}{{ text }}"), "loops ran more than 10,000"),
    Case("template-repeat-text-million", _render("{{ (text ~ ' ')*1000000 }}"), "repeated with \\* would be"),
    Case("template-center-1e9", _render("{{ text|center(1000000000) }}"), "center\\(1,000,000,000\\)"),
    Case("template-constant-center-folded", _render("{{ 'x'|center(1000000000) }}{{ text }}"), "center"),
    Case("template-output-too-long", _render("{% for l in labels %}{{ (text ~ ' ')*4000 }}{% endfor %}"
                                             "{% for l in labels %}{{ (text ~ ' ')*4000 }}{% endfor %}",
                                             ZSS_TEMPLATE_MAX_CHARS="150000"), "grew past 150,000 characters"),
    Case("template-string-doubling", _render("{% set s = text %}" + "{% set s = s ~ s %}" * 40 + "{{ s|length }}"),
         "memory|took longer|grew past"),
    Case("template-replace-chain", _render("{{ 'aaaaaaaaaa'" + "|replace('a','aaaaaaaaaa')" * 9 + " }}{{ text }}"),
         "memory|took longer"),
    Case("template-wall-time-kill", _render("{% set big = [text * 8000] * 1 %}{% for i in labels * 4000 %}"
                                            "{{ (big[0])|wordcount|string|length * 0 }}{% endfor %}{{ text }}",
                                            ZSS_TEMPLATE_TIMEOUT_S="0.3"), "took longer than 0.3 s"),
    Case("template-power", _render("{{ 10 ** 100000 }}{{ text }}"), "exponent"),
    Case("template-format-filter-off", _render("{{ '%999999999s'|format(text) }}"), "No filter named 'format'"),
    Case("template-source-too-long", _render("{{ text }}" + "x" * 30_000), "limit is 20,000"),
    Case("template-file-alias-bomb", _template_file("yaml_alias_bomb_template.yaml"), "more than 50 YAML aliases"),
    Case("template-library-write-home", _library_write(lambda tmp: Path.home()), "read-only here"),
    Case("template-library-write-app-folder", _library_write(
        lambda tmp: Path(__file__).resolve().parent.parent / "templates"), "read-only here"),
    # --------------------------------------------------------------------------------------- YAML / JSON
    Case("labels-file-alias-bomb", _label_file("yaml_alias_bomb_labels.yaml"), "more than 50 YAML aliases"),
    Case("labels-file-deep-nesting", _label_file("deep_nesting_labels.yaml"), "nested"),
    Case("labels-zero-width-duplicate", _label_file("zero_width_labels.yaml"), "Duplicate labels"),
    Case("labels-name-too-long", _make(["a" * 10_000, "b"]), "limit is 200"),
    Case("labels-reads-as-too-long", _make([{"name": "a", "display": "x" * 10_000}, "b"]), "reads as .* limit is 200"),
    Case("file-json-deep-nesting", _read("deep_nesting.json"), "nested"),
    Case("file-jsonl-deep-nesting", _read("deep_nesting.jsonl"), "nested"),
    # ------------------------------------------------------------------------------------------- models
    Case("model-planted-auto-map", _planted_model("auto_map"), "never runs code|trust_remote_code|auto_map"),
    Case("model-pickled-weights-only", _planted_model("pickle"), "safetensors"),
    Case("model-save-killed-after-meta", _save_kill("after-meta"), "removed .tmp-m", notes=True),
    Case("model-save-killed-between-renames", _save_kill("between-renames"), "restored 'm'", notes=True),
    # ------------------------------------------------------------------------------------------- import
    Case("import-wrong-type-id", _import(_project(runs=[_run(id="one")])), "runs\\[0\\].id must be a whole number"),
    Case("import-huge-int", _import(_project(datasets=[{"id": 1, "name": "d", "fingerprint": "f",
                                                        "n_rows": 10**30}])), "out of range"),
    Case("import-name-too-long", _import(_project(datasets=[{"id": 1, "name": "n" * 10_000, "fingerprint": "f"}])),
         "limit is 200"),
    Case("import-project-name-object", _import({**_project(), "project": {"name": {"a": 1}}}), "must be text"),
    Case("import-run-not-object", _import(_project(runs=["x"])), "must be an object"),
    Case("import-settings-not-object", _import(_project(runs=[_run(settings=[1, 2])])), "settings must be an object"),
    Case("import-bad-date", _import(_project(runs=[_run(started_at="yesterday")])), "not an ISO date"),
    Case("import-template-body-not-mapping", _import(_project(templates=[{"id": 1, "name": "t", "version": 1,
                                                                          "body": "just text"}])),
         "body must be a template object"),
    Case("import-template-body-bad-jinja", _import(_project(templates=[{"id": 1, "name": "t", "version": 1,
                                                                        "body": {"template": "{% for %}"}}])),
         "not a usable template"),
    Case("import-deep-nesting", _import(b'{"format": "zero-shot-studio/project", "version": 1, "project": {}, '
                                        b'"runs": ' + b"[" * 5000 + b"]" * 5000 + b"}"), "nested"),
    Case("import-duplicate-ids", _import(_project(runs=[_run(), _run()])), "repeats id 1"),
    # -------------------------------------------------------------------------------- silently wrong results
    Case("file-png-renamed-csv", _read("png_renamed.csv"), "it is a PNG image"),
    Case("file-gzip-renamed-csv", _read("gzip_renamed.csv"), "gzip-compressed; it was decompressed", notes=True),
    Case("file-gzip-bomb", _gzip_bomb, "unpacks to more than the upload limit"),
    Case("file-gb18030-chinese", _read("gb18030_chinese.csv"), "read as GB18030", notes=True),
    Case("file-utf8-one-bad-byte", _read("utf8_one_bad_byte.csv"), "UTF-8 with 1 damaged byte", notes=True),
    Case("file-parquet-list-column", _read("list_column.parquet"), "holds lists", notes=True),
    Case("file-xlsx-formulas-without-values", _read("xlsx_formulas_uncached.xlsx"), "formulas whose results were "
                                                                                     "never saved"),
    Case("file-1mb-cell", _big_cell, "longer than 4,000 characters", notes=True),
    Case("export-csv-formula-injection", _export_escapes, "escaped 3 formula cells", notes=True),
    Case("cli-upload-limit", _cli_upload_limit, "above the limit of 1 MB"),
    Case("file-max-rows", _max_rows, "limit of 3 \\(ZSS_MAX_ROWS\\)"),
    Case("train-all-texts-empty", _train_empty_texts, "Every training text is empty"),
]


def _xlsx_bytes() -> bytes:
    import io

    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame({"text": ["a"], "label": ["b"]}).to_excel(buf, index=False, sheet_name="Data")
    return buf.getvalue()


def _check_clean(message: str) -> None:
    assert message.strip(), "empty message"
    assert "Traceback" not in message and 'File "' not in message, message
    assert not has_absolute_path(message), f"absolute path in: {message}"
    assert not message.startswith("<") and message.strip() != "None", message


def test_corpus_is_big_enough():
    assert len(CASES) >= 50
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(list(BAD.iterdir())) >= 25


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=False)]
                                               if c.xfail else []) for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import re

    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "1"))
    if case.notes:
        notes = case.run(tmp_path)
        assert notes, "expected notes for a usable but odd input"
        text = " ".join(notes)
        _check_clean(text)
        assert re.search(case.match, text), text
        return
    with pytest.raises(UserError) as info:
        case.run(tmp_path)
    message = str(info.value)
    _check_clean(message)
    assert re.search(case.match, message), message


# ------------------------------------------------------------------- encodings on real data (issues 13 and 14)
@pytest.mark.parametrize("name, encoding", [("thucnews_dev.csv", "gbk"), ("ecdt_train.csv", "gb18030"),
                                            ("ecdt_train.csv", "gbk")])
def test_chinese_legacy_encodings_are_read_exactly(name: str, encoding: str):
    """Real Chinese CSVs saved as GBK/GB18030 (what Chinese Windows Excel writes) read back identical to UTF-8."""
    from llm_backend.data.files import read_table
    from tests.conftest import SHARED_DATA, _need

    raw = _need(SHARED_DATA / name).read_bytes()
    utf8 = read_table(raw, name)
    text = raw.decode("utf-8")
    try:
        legacy = text.encode(encoding)
    except UnicodeEncodeError:
        # a few characters outside GBK: keep the rows that encode (still hundreds)
        keep = [line for line in text.splitlines(keepends=True) if _encodes(line, encoding)]
        legacy = "".join(keep).encode(encoding)
        utf8 = read_table("".join(keep).encode("utf-8"), name)
    assert len(utf8.df) >= 200
    table = read_table(legacy, name)
    assert table.encoding == "gb18030", table.notes
    assert any("GB18030" in n for n in table.notes)
    pd_equal = table.df.astype(str).equals(utf8.df.astype(str))
    assert pd_equal


def _encodes(line: str, encoding: str) -> bool:
    try:
        line.encode(encoding)
        return True
    except UnicodeEncodeError:
        return False


def test_utf8_with_a_few_bad_bytes_keeps_every_other_character():
    """Real Chinese news (UTF-8) with 3 damaged bytes: read as UTF-8 (not cp932 or a Chinese code page), the note
    counts 3, and only the 3 damaged rows differ."""
    from llm_backend.data.files import read_table
    from tests.conftest import SHARED_DATA, _need

    raw = _need(SHARED_DATA / "thucnews_dev.csv").read_bytes()[:400_000]
    raw = raw[: raw.rfind(b"\n") + 1]
    assert max(raw) > 127  # the slice has real non-ASCII text (accents, dashes)
    damaged = bytearray(raw)
    spots = []
    for start in (len(damaged) // 5, 2 * len(damaged) // 5, 3 * len(damaged) // 5):  # 3 rows far apart
        spots.append(next(i for i in range(start, len(damaged)) if damaged[i] < 128 and damaged[i] not in b',"\r\n'))
    assert len(spots) == 3
    for i in spots:
        damaged[i] = 0xFF
    clean = read_table(raw, "news.csv").df
    table = read_table(bytes(damaged), "news.csv")
    assert table.encoding == "utf-8"
    assert any("3 damaged bytes" in n for n in table.notes), table.notes
    differing = (table.df.astype(str) != clean.astype(str)).any(axis=1).sum()
    assert differing == len(spots)
