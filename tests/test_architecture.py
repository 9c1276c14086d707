"""The package's import graph: the one place that states the layer order, and checks it.

Subpackages run top to bottom; a module may import any module of a lower subpackage,
and within its own subpackage only the modules listed after it. The tuner is the
bottom: it imports nothing else from ``boresnet``. No imports hide in functions.
"""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "boresnet"
# Top to bottom; within a subpackage, a module imports only those listed after it.
LAYERS = {
    "": ["__main__"],
    "cli": ["cli", "cli.main", "cli.commands"],
    "study": [
        "study",
        "study.loop",
        "study.runners",
        "study.artefacts",
        "study.resume",
        "study.report",
        "study.adapter",
        "study.journal",
        "study.run_folder",
        "study.lock",
        "study.interrupts",
    ],
    "plots": ["plots", "plots.summary", "plots.iteration", "plots.maps", "plots.common"],
    "training": [
        "training",
        "training.trial",
        "training.classifier",
        "training.resnet",
        "training.data",
        "training.device_loader",
        "training.idx",
        "training.distributed",
        "training.faults",
    ],
    "config": ["config", "config.schema", "config.search", "config.checks"],
    "tuner": [
        "tuner",
        "tuner.optimizer",
        "tuner.lengths",
        "tuner.rules",
        "tuner.acquisition",
        "tuner.exclusions",
        "tuner.incumbent",
        "tuner.surrogate",
        "tuner.sampling",
        "tuner.observations",
        "tuner.fidelity",
        "tuner.space",
        "tuner.defaults",
    ],
    "files": ["atomic"],
}
RANK = {name: (i, j) for i, layer in enumerate(LAYERS.values()) for j, name in enumerate(layer)}


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
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("boresnet"):
        base = node.module.removeprefix("boresnet").removeprefix(".")
        subs = {f"{base}.{a.name}".lstrip(".") for a in node.names} & known
        return subs if len(subs) == len(node.names) else subs | {base}
    if isinstance(node, ast.Import):
        return {
            a.name.removeprefix("boresnet.") for a in node.names if a.name.startswith("boresnet")
        }
    return set()


def imports(path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """Package modules imported anywhere in the file, and any imports inside functions."""
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


def test_the_tuner_imports_nothing_else_from_the_package():
    known = set(modules())
    for name, path in modules().items():
        if name.split(".")[0] == "tuner":
            outside = {t for t in imports(path, known)[0] if t.split(".")[0] != "tuner"}
            assert outside == set(), f"{name} imports {outside}"


def test_the_top_of_the_package_stays_small():
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 4, top  # __init__, __main__ and atomic
    sizes = {p: len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 400, max(sizes, key=sizes.get)


def test_an_upward_import_is_caught():
    # The check itself can fail: the optimiser importing the study would be upward, and
    # the tuner importing the config would leave the tuner.
    known = set(modules())
    node = ast.parse("from boresnet.study.loop import start_study").body[0]
    assert targets(node, known) == {"study.loop"}
    assert not RANK["study.loop"] > RANK["tuner.optimizer"]
    node = ast.parse("from boresnet.tuner import acquisition, BayesianOptimizer").body[0]
    assert targets(node, known) == {"tuner", "tuner.acquisition"}
    node = ast.parse("from boresnet.config.schema import Config").body[0]
    assert targets(node, known) == {"config.schema"} and RANK["config.schema"] < RANK["tuner"]


def test_no_private_attribute_of_jsonargparse():
    for path in PACKAGE.rglob("*.py"):
        assert "_subcommands_action" not in path.read_text(), path
