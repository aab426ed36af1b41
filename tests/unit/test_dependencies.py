"""Every module the code imports comes from a package the project declares: one that arrives
only through another package's requirements can vanish when that package changes its own."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from shared.settings import PROJECT_DIR

LOCAL = {"shared", "services", "bench", "tests"}
RUNTIME_CODE = ("shared", "services")
DEV_CODE = ("bench", "tests")


def declared(group: str | None) -> set[str]:
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"]
    if group:
        requirements = requirements + project["optional-dependencies"][group]
    return {normalise(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(folders: tuple[str, ...]) -> dict[str, Path]:
    """Top-level module names imported anywhere under folders, with one file importing each."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in (PROJECT_DIR / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], path)
    return found


def undeclared(folders: tuple[str, ...], allowed: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for module, path in sorted(imported_modules(folders).items()):
        if module in LOCAL or module in sys.stdlib_module_names:
            continue
        providers = {normalise(d) for d in distributions.get(module, [])}
        if not providers & allowed:
            where = path.relative_to(PROJECT_DIR)
            problems.append(f"{module} (imported in {where}; from {sorted(providers) or '?'})")
    return problems


def test_the_services_import_only_declared_dependencies():
    assert undeclared(RUNTIME_CODE, declared(None)) == []


def test_the_tests_and_benchmarks_import_only_declared_dependencies():
    assert undeclared(RUNTIME_CODE + DEV_CODE, declared("dev")) == []
