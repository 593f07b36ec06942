"""The shape of the package: the rules that keep it readable, checked on the source itself."""

import ast
import importlib
from pathlib import Path
import pkgutil

import ssm_jax

PACKAGE = Path(ssm_jax.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _modules():
    return [m.name for m in pkgutil.walk_packages(ssm_jax.__path__, "ssm_jax.")
            if m.name != "ssm_jax.__main__"]


def test_no_name_shadows_a_module():
    """`ssm_jax.a.b` reached attribute by attribute is the module `ssm_jax.a.b` itself."""
    for name in _modules():
        module = importlib.import_module(name)
        reached = ssm_jax
        for part in name.split(".")[1:]:
            reached = getattr(reached, part)
        assert reached is module, f"{name} is shadowed by {reached!r}"


def _module_name(path):
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
        ".__init__")


def _is_module(name):
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _imports(path):
    """The package's modules that `path` imports at module level (lazy imports aside):
    `from X import a` names X.a where that is a module, else X."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + [node.module or ""]).strip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if _is_module(full) else base


def test_no_import_cycle():
    graph = {_module_name(p): set(_imports(p)) - {_module_name(p)} for p in SOURCES}
    done, open_ = set(), []

    def visit(node):
        open_.append(node)
        for nxt in sorted(graph.get(node, ())):
            assert nxt not in open_, "import cycle: " + " -> ".join(
                open_[open_.index(nxt):] + [nxt])
            if nxt not in done:
                visit(nxt)
        open_.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)


def test_every_public_definition_has_a_docstring():
    missing = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    missing.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert not missing, missing


def test_files_stay_one_idea_long():
    long = [f"{p.relative_to(PACKAGE)} ({n})" for p in SOURCES
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long, long


def test_one_call_site_of_diffeqsolve():
    calls = [f"{p.relative_to(PACKAGE)}:{node.lineno}" for p in SOURCES
             for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "diffeqsolve"]
    assert len(calls) == 1 and calls[0].startswith("dynamics/flow.py:"), calls
