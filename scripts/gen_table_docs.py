"""Generate the documents' reference blocks (tables, code map, options) from the code.

Three blocks are written by this script, each between marker comments:

* ``docs/tables.md``, ``<!-- tables:begin -->`` … ``<!-- tables:end -->``: every
  table's columns, from ``schemas/`` (the user tables), ``SYNC_COLUMNS`` in
  ``pipelines/convert/table_spec.py`` (the columns the sync adds) and the schemas in
  ``pipelines/state/dead_letters.py`` and ``pipelines/state/run_log.py``, with partitioning,
  clustering and change field;
* ``docs/code-map.md``, ``<!-- code-map:begin -->`` … ``<!-- code-map:end -->``: one
  line per module of ``pipelines/`` and each of its packages, ``f2bq_analytics/``,
  ``scripts/`` and ``devtools/``, the first paragraph of its docstring (the first comment line for a
  shell script), and the files of ``schemas/``;
* ``README.md``, ``<!-- options:begin -->`` … ``<!-- options:end -->``: the command
  line's options, from the parser ``--help`` prints (``SyncOptions`` and the entry
  point's own), so the README says what ``--help`` says.

    python scripts/gen_table_docs.py           # rewrite every block
    python scripts/gen_table_docs.py --check   # exit 1 if a document is out of date

``tests/tooling/test_table_docs.py`` runs ``--check``, so a schema, an option or a module
docstring changed without running this script fails the unit tests.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pipelines.cli import arguments
from pipelines.convert.table_spec import SYNC_COLUMNS, Column, TableSpec, load_specs
from pipelines.state import dead_letters, run_log

REPO_ROOT = Path(__file__).resolve().parent.parent
THIS = "scripts/gen_table_docs.py"
#: Where generated links point from: the code map lives in docs/, one folder down.
UP = "../"

#: Folders in the code map, with what the folder is for when it has no package docstring.
#: pipelines/'s packages in the order a run meets them: the command line, the plan,
#: the Beam transforms, the conversion of a document, the sync's own tables, the clients.
PIPELINES_PACKAGES = ("cli", "plan", "transforms", "convert", "state", "services")
CODE_MAP_DIRS: tuple[tuple[str, str], ...] = (
    ("pipelines", ""),
    *((f"pipelines/{package}", "") for package in PIPELINES_PACKAGES),
    ("f2bq_analytics", ""),
    ("schemas", "The table declarations, one JSON file per table (see [Tables](tables.md))."),
    (
        "scripts",
        "Programs run by hand, by CI or by the deploy steps (not shipped to workers); "
        "those whose code is imported elsewhere are thin entry points into `devtools/`.",
    ),
    ("devtools", ""),
)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _column_table(columns: Iterable[Mapping[str, str]]) -> list[str]:
    lines = ["| column | type | mode | description |", "|---|---|---|---|"]
    for c in columns:
        mode = c.get("mode", "NULLABLE")
        lines.append(f"| `{c['name']}` | {c['type']} | {mode} | {_cell(c['description'])} |")
    return lines


def _layout_line(
    partition: str | None, clustering: Sequence[str], extra: Sequence[str] = ()
) -> str:
    parts = list(extra)
    if partition:
        parts.append(f"partitioned by `DAY({partition})`")
    if clustering:
        parts.append("clustered by " + ", ".join(f"`{c}`" for c in clustering))
    return " · ".join(parts)


def _column_rows(columns: Iterable[Column], parent: str = "") -> list[dict[str, str]]:
    """One row per column, a RECORD's sub-fields after it as ``record.sub_field``."""
    rows = []
    for col in columns:
        description = col.description
        if col.allowed_values:
            description += " Allowed: " + ", ".join(map(str, col.allowed_values)) + "."
        if col.from_create_time:
            description += " From the document's Firestore create time."
        elif col.source != (col.name,):
            description += " From Firestore field `" + ".".join(col.source) + "`."
        if col.timestamp_source and not col.from_create_time:
            description += f" Stored as `{col.timestamp_source}`."
        if col.policy != "keep":
            description += f" Policy `{col.policy}`."
        name = f"{parent}.{col.name}" if parent else col.name
        rows.append({"name": name, "type": col.type, "mode": col.mode, "description": description})
        rows += _column_rows(col.fields, name)
    return rows


def _user_table(spec: TableSpec) -> list[str]:
    if spec.layout == "per_user":
        source = f"{spec.parent_collection}/{{{spec.user_id_column}}}/{spec.collection}"
    else:
        source = spec.collection
    if spec.change_field:
        change = f"change field `{spec.change_field}` (incremental runs find late edits by it)"
    else:
        change = "no change field (late edits: see the drift check and full runs)"
    columns = _column_rows(spec.columns)
    lines = [f"## `{spec.name}`", ""]
    if spec.description:
        lines += [spec.description, ""]
    layout = _layout_line(spec.partition_column, spec.clustering, [f"Source `{source}`"])
    lines += [f"{layout} · {change}", "", *_column_table(columns), ""]
    return lines


def _sync_table(
    name: str,
    description: str | None,
    schema: Sequence[Mapping[str, str]],
    partition: str | None,
    clustering: Sequence[str],
) -> list[str]:
    lines = [f"## `{name}`", ""]
    if description:
        lines += [description, ""]
    layout = _layout_line(partition, clustering)
    if layout:
        lines += [layout[0].upper() + layout[1:], ""]
    return lines + [*_column_table(schema), ""]


def render_tables(specs: Mapping[str, TableSpec]) -> str:
    """The Tables block: each user table, the sync columns, then the sync's own tables."""
    lines = [f"<!-- Generated by {THIS} from schemas/ and pipelines/: do not edit by hand. -->", ""]
    for name in sorted(specs):
        lines += _user_table(specs[name])
    lines += [
        "Every table also has these sync columns"
        " (`SYNC_COLUMNS` in `pipelines/convert/table_spec.py`):",
        "",
        *_column_table(SYNC_COLUMNS),
        "",
    ]
    lines += _sync_table(
        dead_letters.TABLE,
        getattr(dead_letters, "DESCRIPTION", None),
        dead_letters.SCHEMA,
        dead_letters.PARTITION_COLUMN,
        dead_letters.CLUSTERING,
    )
    lines += _sync_table(
        run_log.TABLE,
        run_log.DESCRIPTION,
        run_log.SCHEMA,
        run_log.PARTITION_COLUMN,
        run_log.CLUSTERING,
    )
    return "\n".join(lines).rstrip("\n")


def summary(path: Path) -> str:
    """What a module owns: the first paragraph of its docstring, as one line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        doc = ast.get_docstring(ast.parse(text, str(path)))
    else:  # a shell script: its first comment block after the shebang
        block = []
        for line in text.splitlines()[1:]:
            if not line.startswith("#") or (block and not line.strip("# ")):
                break
            block.append(line.strip("# "))
        doc = "\n".join(block)
    if not doc:
        raise SystemExit(f"{path.relative_to(REPO_ROOT)}: no docstring to put in the code map")
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "`")


def render_code_map(root: Path = REPO_ROOT) -> str:
    lines = [f"<!-- Generated by {THIS} from the modules' docstrings: do not edit by hand. -->"]
    for folder, fallback in CODE_MAP_DIRS:
        directory = root / folder
        init = directory / "__init__.py"
        about = fallback or summary(init)
        lines += ["", f"**`{folder}/`** — {_cell(about)}", ""]
        files = sorted(directory.iterdir())
        for path in files:
            if path.name == "__init__.py" or path.suffix not in (".py", ".sh"):
                continue
            link = f"{UP}{folder}/{path.name}"
            lines.append(f"- [`{path.name}`]({link}) — {_cell(summary(path))}")
        tables = [f"`{p.name}`" for p in files if p.suffix == ".json"]
        if tables:
            lines.append("- " + ", ".join(tables))
    return "\n".join(lines)


def _help_text(action: argparse.Action, prog: str) -> str:
    """An option's help as ``--help`` shows it: ``%(default)s`` and the like filled in."""
    text = action.help or ""
    if "%" in text:
        text = text % {**vars(action), "prog": prog}
    if action.choices:
        text += " One of: " + ", ".join(f"`{c}`" for c in action.choices) + "."
    return text


def _default_text(action: argparse.Action) -> str:
    if action.default is False or action.nargs == 0:
        return "off"
    if action.default in (None, "", argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def render_options() -> str:
    """The options table: every option ``--help`` lists, in its order, with default and help."""
    parser = arguments.help_parser()
    lines = [
        f"<!-- Generated by {THIS} from `firestore-to-bq --help` "
        "(pipelines/cli/arguments.py, SyncOptions): do not edit by hand. -->",
        "",
        "| option | default | what it does |",
        "|---|---|---|",
    ]
    for action in parser._actions:  # argparse has no public list of its options
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        names = ", ".join(f"`{s}`" for s in action.option_strings)
        help_text = _cell(_help_text(action, parser.prog))
        lines.append(f"| {names} | {_default_text(action)} | {help_text} |")
    return "\n".join(lines)


#: Each generated block: the document it lives in (from the repository root), its
#: marker name, and what renders it.
BLOCKS: tuple[tuple[str, str, Callable[[], str]], ...] = (
    ("docs/tables.md", "tables", lambda: render_tables(load_specs(REPO_ROOT / "schemas"))),
    ("docs/code-map.md", "code-map", render_code_map),
    ("README.md", "options", render_options),
)


def replace_block(text: str, name: str, body: str, document: str = "README.md") -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"{document} needs exactly one {begin} … {end} pair")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def generate(root: Path = REPO_ROOT) -> dict[Path, tuple[str, str]]:
    """Per document under ``root``: its current text and the text with its blocks rewritten."""
    texts: dict[Path, tuple[str, str]] = {}
    for document, name, render in BLOCKS:
        path = root / document
        if path not in texts:
            current = path.read_text(encoding="utf-8")
            texts[path] = (current, current)
        current, wanted = texts[path]
        texts[path] = (current, replace_block(wanted, name, render(), document))
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a document is stale")
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="folder holding README.md and docs/ (default: this repository)",
    )
    args = parser.parse_args(argv)
    stale = []
    for path, (current, wanted) in generate(args.root).items():
        if current == wanted:
            continue
        name = path.relative_to(args.root).as_posix()
        stale.append(name)
        if not args.check:
            path.write_text(wanted, encoding="utf-8")
            print(f"updated {name}")
    if args.check and stale:
        print(
            f"{', '.join(stale)} out of date with schemas/, the options or the module "
            f"docstrings: run `.venv/bin/python {THIS}` (or `make docs`) and commit it",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
