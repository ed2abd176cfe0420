"""The docs' promises that code can check: the README is a short front door, every variable config.py
reads is documented, the field table is the catalog's, the layer table is test_layers.py's, and every
repo path the docs name exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from glaze_pipeline.core.model.fields import CATALOG
from glaze_pipeline_tests.test_layers import CORE_LAYERS, SHELL_ONLY

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIG = ROOT / "glaze_pipeline" / "config.py"
DOC_FILES = [
    README,
    *sorted(DOCS.glob("*.md")),
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "glaze_pipeline").rglob("README.md")),
]

# Paths the docs already name that another branch brings; each entry says which. The last test fails
# once such a path exists, so the entry is removed when that branch is merged.
COMING: dict[str, str] = {}

# Ours, and the two standard ones that place the default GLAZE_HOME.
VARIABLE = re.compile(r"\b(?:(?:GLAZE|ANTHROPIC)_[A-Z0-9_]*[A-Z0-9]|XDG_DATA_HOME|HOME)\b")


# --- README ---------------------------------------------------------------------------------------


def test_readme_is_a_short_front_door_with_the_two_commands_first() -> None:
    assert len(README.read_bytes()) < 8 * 1024, "README.md must stay under 8 KB: move details into docs/"
    first_screen = "\n".join(README.read_text().splitlines()[:20])
    assert "make demo" in first_screen and "make test" in first_screen


def test_no_doc_points_to_a_design_file_outside_the_repo() -> None:
    assert not [p.name for p in DOC_FILES if "DESIGN.md" in p.read_text()]


# --- configuration --------------------------------------------------------------------------------


def _name_argument(call: ast.Call) -> ast.expr | None:
    """The variable-name argument of `env.get(NAME, …)`, `_int(env, NAME, …)`, `_float(…)` or `_dollars(…)`."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "get" and isinstance(func.value, ast.Name):
        return call.args[0] if func.value.id == "env" and call.args else None
    if isinstance(func, ast.Name) and func.id in {"_int", "_float", "_dollars"} and len(call.args) >= 2:
        return call.args[1]
    return None


def config_variables(source: str) -> set[str]:
    """Every environment variable config.py reads, per-provider ones expanded for each paid provider."""
    tree = ast.parse(source)
    # The readers themselves pass their `name` parameter on; only their callers name variables.
    helpers = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name in {"_int", "_float", "_dollars"}]
    inside_helpers = {id(n) for f in helpers for n in ast.walk(f)}
    plain: set[str] = set()
    per_provider: set[str] = set()
    for node in ast.walk(tree):
        arg = _name_argument(node) if isinstance(node, ast.Call) and id(node) not in inside_helpers else None
        if arg is None:
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            plain.add(arg.value)
        elif (
            isinstance(arg, ast.BinOp)
            and isinstance(arg.left, ast.Name)
            and arg.left.id == "prefix"
            and isinstance(arg.right, ast.Constant)
        ):
            per_provider.add(str(arg.right.value))
        else:
            raise AssertionError(f"config.py line {arg.lineno} reads a variable this test cannot name; teach it")
    defaults = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == "_API_DEFAULTS"
    ]
    providers = [
        str(k.value) for d in defaults if isinstance(d, ast.Dict) for k in d.keys if isinstance(k, ast.Constant)
    ]
    return plain | {f"GLAZE_{p.upper()}_{suffix}" for p in providers for suffix in per_provider}


def test_the_config_parser_finds_plain_and_per_provider_variables() -> None:
    found = config_variables(CONFIG.read_text())
    assert {"GLAZE_HOME", "ANTHROPIC_API_KEY", "GLAZE_MAX_COST_USD"} <= found
    assert {"GLAZE_SEARCH_API_KEY", "GLAZE_LINKEDIN_RATE_PER_MIN", "GLAZE_LINKEDIN_TIMEOUT_S"} <= found
    assert config_variables('def f(env):\n    env.get("GLAZE_X")\n    _int(env, "GLAZE_Y", 1)\n') == {
        "GLAZE_X",
        "GLAZE_Y",
    }


def test_every_variable_config_reads_is_documented() -> None:
    documented = set(VARIABLE.findall((DOCS / "configuration.md").read_text()))
    missing = sorted(config_variables(CONFIG.read_text()) - documented)
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_configuration_documents_no_variable_config_does_not_read() -> None:
    documented = set(VARIABLE.findall((DOCS / "configuration.md").read_text()))
    stale = sorted(documented - config_variables(CONFIG.read_text()))
    assert not stale, f"docs/configuration.md names variables config.py does not read: {stale}"


# --- generated tables -----------------------------------------------------------------------------


def test_the_field_table_matches_the_catalog() -> None:
    lines = (DOCS / "fields.md").read_text().splitlines()
    rows = [line for line in lines if re.match(r"^\| `\w+` \| (company|person) \|", line)]
    documented = [(r.split("|")[1].strip(" `"), r.split("|")[2].strip(), r.split("|")[3].strip()) for r in rows]
    assert documented == [(f.name, f.subject.value, f.description) for f in CATALOG.values()]


def test_the_layer_table_is_the_one_test_layers_enforces() -> None:
    text = (DOCS / "architecture.md").read_text()
    rows = re.findall(r"^\| `(core\.\w+)` \| ([^|]*) \|", text, flags=re.MULTILINE)
    documented = {layer: set(re.findall(r"`([\w.]+)`", allowed)) for layer, allowed in rows}
    assert documented == CORE_LAYERS
    shell = re.search(r"^The shell: (.*)$", text, flags=re.MULTILINE)
    assert shell and set(re.findall(r"`([\w.]+)`", shell.group(1))) == set(SHELL_ONLY)


# --- paths ----------------------------------------------------------------------------------------

ROOTS = {p.name for p in ROOT.iterdir() if not p.name.startswith((".venv", ".tools", ".glaze", ".git"))}
ROOTS |= {p.name for p in (ROOT / "glaze_pipeline").iterdir()} | {"glaze_pipeline", "core", "defs", "docs"}
SOURCE_SUFFIXES = (".py", ".md", ".toml", ".yml", ".yaml", ".sql", ".json", ".mako", ".lock")
NOT_A_PATH = re.compile(r"[\s*<>{}$=|…]|\.\.\.|://|^[-~/]|^\.\.")


def named_paths(doc: Path) -> list[str]:
    """Repo paths a doc names: relative link targets, and backticked paths that start at a repo folder."""
    text = doc.read_text()
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"^(https?:|mailto:|#)", target):
            found.append(target.split("#")[0])
    for token in re.findall(r"`([^`\n]+)`", text):
        token = token.rstrip(".,:")
        if "/" not in token or NOT_A_PATH.search(token):
            continue
        if token.split("/")[0] in ROOTS or token.endswith(SOURCE_SUFFIXES):
            found.append(token)
    return found


def exists(doc: Path, path: str) -> bool:
    candidates = [(base / path).resolve() for base in (doc.parent, ROOT, ROOT / "glaze_pipeline")]
    coming = {(ROOT / c).resolve() for c in COMING}
    return any(c.exists() or c in coming for c in candidates)


def test_the_path_finder_sees_links_and_backticked_paths(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "[a](docs/a.md) [b](https://x.org/y) `core/web/fetch.py` `GLAZE_HOME/inbox/` `lib/gone.py` "
        "`GLAZE_HOME/stages/<asset>/<table>.parquet` `../shared/corpus` `core/*.py`"
    )
    assert named_paths(doc) == ["docs/a.md", "core/web/fetch.py", "lib/gone.py"]


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = sorted({p for p in named_paths(doc) if not exists(doc, p)})
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_coming_paths_are_still_to_come() -> None:
    arrived = sorted(path for path in COMING if (ROOT / path).exists())
    assert not arrived, f"{arrived} exist now: remove them from COMING in test_docs.py"


def test_every_entry_of_the_readme_folder_map_exists() -> None:
    """The map is a tree: two spaces of indent per level, the entry's names before the first run of spaces."""
    block = README.read_text().split("## Where things are", 1)[1].split("```")[1]
    parents: list[str] = []
    missing = []
    for line in block.strip("\n").splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        names = re.split(r"\s{2,}", line.strip())[0]
        parents = parents[:depth]
        for name in names.split(", "):
            path = "/".join([*parents, name.rstrip("/")])
            if not (ROOT / path).exists() and path not in COMING:
                missing.append(path)
        parents.append(names.rstrip("/"))
    assert not missing, f"README's folder map names what does not exist: {missing}"
