"""The package's import graph: one way down, no cycles, no imports hidden in functions."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "boresnet"
# Top to bottom (docs/development.md): a module may import only modules of a lower
# layer, or of its own layer that are listed after it. The tuner package sits between
# the study's modules and the building blocks: its public face (``boresnet.tuner``)
# on top, then its parts, each importing only those below it.
LAYERS = [
    ["__main__", "cli"],
    ["commands"],
    ["study", "report", "resume"],
    ["engine", "figures", "maps", "trial"],
    ["tuner"],
    ["tuner.optimizer"],
    ["tuner.rules"],
    ["tuner.acquisition"],
    ["tuner.exclusions"],
    ["tuner.incumbent"],
    ["tuner.surrogate"],
    ["tuner.sampling"],
    ["tuner.observations"],
    [
        "module",
        "data",
        "idx",
        "device_loader",
        "model",
        "space",
        "journal",
        "run_folder",
        "config",
        "search_config",
        "config_checks",
        "prototype",
        "faults",
        "interrupts",
    ],
]
RANK = {name: (i, j) for i, layer in enumerate(LAYERS) for j, name in enumerate(layer)}


def module_name(path: Path) -> str:
    """``tuner.rules`` for boresnet/tuner/rules.py; ``tuner`` for its ``__init__``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package but its top ``__init__``, by :func:`module_name`."""
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"}


def targets(node: ast.AST, known: set[str]) -> set[str]:
    """The package's modules an import statement names (``from boresnet.tuner import rules``
    names ``tuner.rules``; ``from boresnet.tuner import BayesianOptimizer``, ``tuner``)."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("boresnet."):
        base = node.module.removeprefix("boresnet.")
        subs = {f"{base}.{a.name}" for a in node.names} & known
        return subs if len(subs) == len(node.names) else subs | {base}
    if isinstance(node, ast.Import):
        return {
            a.name.removeprefix("boresnet.") for a in node.names if a.name.startswith("boresnet.")
        }
    return set()


def imports(path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """Package modules imported at module level, and any imports inside functions."""
    tree = ast.parse(path.read_text())
    top, nested = set(), []
    for node in ast.walk(tree):
        top |= targets(node, known)
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    nested.append(f"{path.name}:{node.lineno}")
    return top, nested


def test_every_module_has_a_layer():
    assert set(modules()) == set(RANK), set(modules()) ^ set(RANK)


def test_imports_run_one_way_and_none_hide_in_functions():
    known = set(modules())
    hidden = []
    for name, path in modules().items():
        top, nested = imports(path, known)
        hidden += nested
        for target in top:
            assert RANK[target] > RANK[name], f"{name} imports {target} (upward)"
    assert hidden == [], f"imports inside functions: {hidden}"


def test_an_upward_import_is_caught():
    # The check itself can fail: the optimiser importing the study would be upward.
    known = set(modules())
    node = ast.parse("from boresnet.study import start_study").body[0]
    assert targets(node, known) == {"study"} and not RANK["study"] > RANK["tuner.optimizer"]
    node = ast.parse("from boresnet.tuner import acquisition, BayesianOptimizer").body[0]
    assert targets(node, known) == {"tuner", "tuner.acquisition"}


def test_no_private_attribute_of_jsonargparse():
    for path in PACKAGE.rglob("*.py"):
        assert "_subcommands_action" not in path.read_text(), path
