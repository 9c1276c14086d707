"""The package's import graph: one way down, no cycles, no imports hidden in functions."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "boresnet"
# Top to bottom (README "How the package is laid out"): a module may import only modules
# of a lower layer, or of its own layer that are listed before it.
LAYERS = [
    ["__main__", "cli"],
    ["commands"],
    ["study", "report", "resume"],
    ["figures", "optimizer", "trial"],
    [
        "module",
        "data",
        "device_loader",
        "model",
        "space",
        "journal",
        "run_folder",
        "config",
        "prototype",
    ],
]
RANK = {name: (i, j) for i, layer in enumerate(LAYERS) for j, name in enumerate(layer)}


def imports(path: Path) -> tuple[set[str], list[str]]:
    """``boresnet`` modules imported at module level, and any imported inside functions."""
    tree = ast.parse(path.read_text())
    top, nested = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("boresnet."):
            names = {node.module.split(".")[1]}
        elif isinstance(node, ast.Import):
            names = {a.name.split(".")[1] for a in node.names if a.name.startswith("boresnet.")}
        else:
            continue
        top |= names
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    nested.append(f"{path.name}:{node.lineno}")
    return top, nested


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(RANK), modules ^ set(RANK)


def test_imports_run_one_way_and_none_hide_in_functions():
    hidden = []
    for path in PACKAGE.glob("*.py"):
        if path.stem == "__init__":
            continue
        top, nested = imports(path)
        hidden += nested
        for target in top:
            assert RANK[target] > RANK[path.stem], f"{path.stem} imports {target} (upward)"
    assert hidden == [], f"imports inside functions: {hidden}"


def test_no_private_attribute_of_jsonargparse():
    for path in PACKAGE.glob("*.py"):
        assert "_subcommands_action" not in path.read_text(), path
