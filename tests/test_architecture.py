"""The shape of the code: the core (`index/`) is layers that import only downwards
(`LAYERS`), imports run one way, `bot/` → `index/`, and adapters add their own commands to
`newsbot` (so the core works, and `newsbot --help` too, without them)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADAPTER_MODULES = ("bot", "discord")


def imported(path: Path) -> set[str]:
    """Every module `path` imports anywhere (inside functions and TYPE_CHECKING too)."""
    package = ".".join(path.relative_to(ROOT).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Module → the modules of the same package (subpackages included) it imports."""
    modules = {module_name(p): p for p in (ROOT / package).rglob("*.py")}
    return {name: imported(path) & set(modules) - {name} for name, path in modules.items()}


# The core's layers, lowest first. A module may import its own layer and the layers below
# it; layers of one rank (build and search) never import each other.
LAYERS: list[tuple[str, int, str]] = [
    ("foundation", 0, "errors, settings, text, disk: what every layer may use"),
    ("ingest", 1, "the corpus folder and the web read into articles; chunks"),
    ("models", 1, "the embedding model and the optional chat model"),
    ("store", 2, "an index folder: layout, catalogs, vectors, BM25, manifest, lock"),
    ("build", 3, "reindexing: the next generation built, checked and switched to"),
    ("search", 3, "passages for a question: retrieval, ranking, candidates"),
    ("answer", 4, "passages to a cited answer: extractive, language model, follow-ups"),
    ("facade", 5, "index.Newsbot and the LangChain retriever: the public surface"),
    ("evaluation", 6, "answers scored against known answers"),
    ("learn", 7, "fitting the shipped models"),
    ("cli", 8, "the newsbot command"),
]
RANK = {name: rank for name, rank, _ in LAYERS}
FACADE = {"index", "index.newsbot", "index.langchain_retriever"}


def layer_of(module: str) -> str:
    """The layer of a module of the core (`index.…`)."""
    parts = module.split(".")
    if module in FACADE:
        return "facade"
    if module == "index.__main__":
        return "cli"
    if len(parts) > 2 or (ROOT / "index" / parts[1]).is_dir():
        return parts[1]
    return "foundation"


def breaches(graph: dict[str, set[str]]) -> list[str]:
    """Each import of the core that does not go down (or stay inside its layer)."""
    found = []
    for module, imports in sorted(graph.items()):
        mine = layer_of(module)
        for target in sorted(imports):
            theirs = layer_of(target)
            if theirs != mine and RANK[theirs] >= RANK[mine]:
                found.append(f"{module} ({mine}) imports {target} ({theirs})")
    return found


def test_every_subpackage_of_the_core_is_a_layer() -> None:
    packages = {p.parent.name for p in (ROOT / "index").glob("*/__init__.py")}
    assert packages <= set(RANK), packages - set(RANK)
    assert {layer_of(name) for name in import_graph("index")} <= set(RANK)


def test_the_core_imports_only_downwards() -> None:
    assert breaches(import_graph("index")) == []


def test_the_layer_check_finds_an_upward_import() -> None:
    graph = {
        "index.store.catalog": {"index.errors", "index.ingest.chunks"},
        "index.search.retrieval": {"index.build.stories"},
        "index.errors": {"index.cli.app"},
    }
    assert breaches(graph) == [
        "index.errors (foundation) imports index.cli.app (cli)",
        "index.search.retrieval (search) imports index.build.stories (build)",
    ]


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, or None."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def reached(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules `start` imports, directly or through others."""
    found: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - found:
            found.add(nxt)
            todo.append(nxt)
    return found


# Records that cross layers (`index.records`) need no storage: an `Answer`, and the `Hit`s
# it cites, are read without SQLite or Chroma underneath (a renderer, the LangChain adapter).
STORAGE = ("sqlite3", "chromadb")
STORAGE_FREE = ("index.records", "index.answer.types")


@pytest.mark.parametrize("module", STORAGE_FREE)
def test_the_records_and_the_answer_reach_no_store(module: str) -> None:
    graph = import_graph("index")
    assert module in graph
    assert sorted(name for name in reached(graph, module) if layer_of(name) == "store") == []


def test_the_records_and_the_answer_import_no_storage_library() -> None:
    script = (
        f"import sys\nimport {', '.join(STORAGE_FREE)}\n"
        f"print(sorted(name for name in sys.modules if name.split('.')[0] in {STORAGE!r}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_core_never_imports_an_adapter() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name.split(".")[0] in ADAPTER_MODULES
        )
        for path in sorted((ROOT / "index").rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("package", ["index", "bot"])
def test_no_import_cycle_inside_a_package(package: str) -> None:
    assert cycle(import_graph(package)) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


# Runs in a fresh interpreter where `bot` and `discord` cannot be imported, as on a machine
# with the core alone; then imports every module under index/ and runs `newsbot --help`.
WITHOUT_ADAPTERS = """
import importlib, pkgutil, sys

class NoAdapters:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("bot", "discord"):
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, NoAdapters())
import index
for module in pkgutil.walk_packages(index.__path__, "index."):
    if not module.name.endswith("__main__"):  # runs a command line when imported
        importlib.import_module(module.name)
from index.cli.app import main
sys.argv = ["newsbot", "--help"]
main()
"""


def newsbot_help(*, adapters: bool) -> subprocess.CompletedProcess[str]:
    script = (
        WITHOUT_ADAPTERS
        if not adapters
        else "import sys\nfrom index.cli.app import main\nsys.argv = ['newsbot', '--help']\nmain()"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100", "PYTHONPATH": str(ROOT)},
    )


def test_newsbot_works_without_the_discord_adapter_and_lists_bot_only_with_it() -> None:
    without = newsbot_help(adapters=False)
    assert without.returncode == 0, without.stderr
    assert "ask" in without.stdout
    assert "index" in without.stdout
    assert " bot " not in without.stdout

    with_adapter = newsbot_help(adapters=True)
    assert with_adapter.returncode == 0, with_adapter.stderr
    assert " bot " in with_adapter.stdout


def test_every_package_is_installed() -> None:
    """pyproject.toml lists the packages by name: a new subpackage must be listed too, or a
    non-editable install leaves it out."""
    import tomllib

    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("index", "bot")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed


MOST_TOP_LEVEL_MODULES = 10  # besides __init__ and __main__: the rest lives in the layers
MOST_LINES = 500


def test_the_core_has_few_top_level_modules() -> None:
    top = sorted(p.name for p in (ROOT / "index").glob("*.py") if not p.name.startswith("__"))
    assert len(top) <= MOST_TOP_LEVEL_MODULES, top


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for top in ("index", "bot")
        for path in (ROOT / top).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MOST_LINES
    }
    assert long == {}


def test_the_public_surface_imports_from_index_and_from_its_modules() -> None:
    import index
    from index.answer import Answer, Citation
    from index.langchain_retriever import NewsbotRetriever
    from index.newsbot import Newsbot
    from index.settings import Settings

    assert (index.Answer, index.Citation, index.Newsbot) == (Answer, Citation, Newsbot)
    assert (index.NewsbotRetriever, index.Settings) == (NewsbotRetriever, Settings)
    with pytest.raises(AttributeError):
        index.Catalog  # noqa: B018  (not public)
