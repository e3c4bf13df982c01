"""The code's shape, checked on every run: ruff and mypy clean on ragft/, no import cycle between ragft's modules
(imports inside functions count: they hide a cycle, they do not remove it), and every module importable on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ragft"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``: not run, so not part of the import graph."""
    return {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for stmt in node.body for n in ast.walk(stmt)}


def import_graph() -> dict[str, set[str]]:
    """Module -> the ragft modules it imports when run (at module level or inside a function)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else (node.module or "")
                names = [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                while name not in mods and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in mods and name != mod:
                    graph[mod].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and "ragft.store" in graph["ragft.chat"]  # the graph is read, not empty
    found = cycles(graph)
    detail = [{m: sorted(graph[m] & set(c)) for m in c} for c in found]
    assert not found, f"import cycles (module -> the modules of its cycle it imports): {detail}"


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_ruff_is_clean_on_the_package():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "ragft"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.slow  # a cold run reads the types of torch, gradio and chromadb: tens of seconds (seconds once cached)
def test_mypy_is_clean_on_the_package():
    # settings and files in pyproject.toml; the cache is mypy's own .mypy_cache in the checkout (git ignores it)
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"], cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


# The libraries ragft builds on, imported once by the parent of `_IMPORT_ALONE`'s forks: they take seconds to import,
# and whether ragft's modules import alone does not depend on them (none of ragft's is imported before the fork).
LIBRARIES = ("numpy", "torch", "transformers", "peft", "accelerate", "sentence_transformers", "chromadb", "gradio",
             "pandas", "matplotlib")
_IMPORT_ALONE = """
import importlib, os, sys
for name in sys.argv[1].split(","):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
assert not [m for m in sys.modules if m == "ragft" or m.startswith("ragft.")]
failed = []
for mod in sys.argv[2].split(","):
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(mod)
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        failed.append(mod)
print(",".join(failed))
"""


@pytest.mark.slow  # imports torch, gradio and chromadb once, then forks per module: seconds, not a minute
def test_every_module_imports_on_its_own():
    importable = [m for m in modules() if not m.endswith("__main__")]  # `python -m ragft` runs it, nobody imports it
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALONE, ",".join(LIBRARIES), ",".join(importable)], cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    failed = [m for m in out.stdout.strip().split(",") if m]
    assert not failed, (failed, out.stderr[-3000:])
    assert len(importable) > 50  # every module was tried (a module that failed is named above)
