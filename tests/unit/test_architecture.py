"""The structure the code promises (ARCHITECTURE.md): the step vocabulary, the runtime
table and its schema."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from direct_lvm import runtimes, spec
from direct_lvm.steps import Action, Kind, PlanBuilder


def test_every_runtime_in_the_table_is_in_the_schema_and_back():
    enum = spec.schema()["properties"]["runtime"]["enum"]
    assert enum == [str(r) for r in runtimes.Runtime]
    assert set(runtimes.TABLE) == set(runtimes.Runtime)
    for section in runtimes.section_owners():
        assert section in spec.schema()["properties"]


def test_builder_keeps_order_and_kinds():
    b = PlanBuilder()
    b.run("r1", "vgcreate", "vg", "/dev/vdb", kind=Kind.LVM)
    b.write("w1", "/etc/x", "x\n")
    b.run("moved", "mv", "--no-target-directory", "/a", "/a.bak", kind=Kind.MOVE_ASIDE)
    b.fact("f")
    b.note("n")
    p = b.build()
    assert [s.action for s in p.steps] == [Action.RUN, Action.WRITE, Action.RUN]
    assert [s.kind for s in p.steps] == [Kind.LVM, Kind.FILE, Kind.MOVE_ASIDE]
    assert [s.kept_at for s in p.steps] == [None, None, "/a.bak"]
    assert (p.facts, p.notes) == (("f",), ("n",))
    assert p.steps[1].to_json()["mode"] == "0o644"
    with pytest.raises(ValueError):
        b.run("no", "true", kind=Kind.FILE)


# ------------------------------------------------------------------ the import graph

SRC = Path(__file__).resolve().parents[2] / "src" / "direct_lvm"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = ["direct_lvm", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, from the source with ast: every
    import statement, those in functions and under `if TYPE_CHECKING:` too (a circle
    through type hints is a circle). Importing a submodule is an edge to that module
    only (its package's __init__ runs first, but the test keeps each __init__ free of
    imports that could close a circle)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [
                    f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names
                ]
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "direct_lvm.steps" in graph["direct_lvm.plan"]  # the graph sees relative imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# ------------------------------------------------------------------ no runtime branches


RUNTIME_NAME = re.compile(r"\bRuntime\.[A-Z_]+")
COMPARED = re.compile(r"\.runtime\s*(?:is|==|!=|in)\b|\[[\"']runtime[\"']\]\s*(?:==|!=|is|in)\b")
NAMES = re.compile("|".join(re.escape(str(r)) for r in runtimes.Runtime))


def runtime_branches() -> list[str]:
    """Lines outside runtimes/ that name a runtime member, compare the configured
    runtime, or spell a runtime's name in code (docstrings and comments aside)."""
    out = []
    for name, path in _modules().items():
        if name.startswith("direct_lvm.runtimes"):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "Runtime"
            ):
                out.append(f"{path.name}:{node.lineno}: Runtime.{node.attr}")
            if isinstance(node, ast.Compare):
                text = ast.unparse(node)
                if COMPARED.search(text) or any(
                    isinstance(c, ast.Constant)
                    and isinstance(c.value, str)
                    and NAMES.fullmatch(c.value)
                    for c in [node.left, *node.comparators]
                ):
                    out.append(f"{path.name}:{node.lineno}: {text}")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and NAMES.fullmatch(node.value)
            ):
                out.append(f"{path.name}:{node.lineno}: {node.value!r}")
    return out


def test_no_module_outside_runtimes_branches_on_a_runtime():
    assert runtime_branches() == []


def test_the_branch_finder_finds_one(tmp_path, monkeypatch):
    pkg = tmp_path / "direct_lvm"
    pkg.mkdir()
    (pkg / "core.py").write_text(
        "if spec.runtime is Runtime.DOCKER_OVERLAY2:\n    pass\n"
        "if d['runtime'] == 'docker-overlay2':\n    pass\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "SRC", pkg)
    found = runtime_branches()
    assert any("Runtime.DOCKER_OVERLAY2" in f for f in found)
    assert any("d['runtime'] == 'docker-overlay2'" in f for f in found)


@pytest.mark.parametrize("name", list(runtimes.Runtime))
def test_every_runtime_module_is_a_plugin_that_matches_its_table_line(name):
    plugin = runtimes.get(name)
    _, section = runtimes.TABLE[name]
    assert plugin.name is name and plugin.section == section
    assert plugin.thin == (plugin.root is None)  # a plain LV is mounted somewhere
    assert plugin.service_unit in plugin.units and set(plugin.hold_units) == set(plugin.units)
    assert runtimes.get(str(name)) is plugin  # the config's string finds the same plugin
