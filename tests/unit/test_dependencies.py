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


def requirements(group: str | None) -> list[str]:
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    found = project["dependencies"]
    return found + project["optional-dependencies"][group] if group else found


def declared(group: str | None) -> set[str]:
    return {normalise(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements(group)}


def locked(lock: str) -> set[str]:
    """The lock's pins, as normalised `name==version`."""
    text = (PROJECT_DIR / lock).read_text()
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", text, re.MULTILINE)
    return {f"{normalise(name)}=={version}" for name, version in pins}


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


def test_the_locks_pin_what_pyproject_pins():
    """A dependency added or moved in pyproject.toml without `make lock` would be missing from
    (or different in) what `make install` and the image install."""
    for lock, group in (("requirements.lock", None), ("requirements-dev.lock", "dev")):
        pins = {  # a pin's extras (moto[s3]) are not part of its locked name
            normalise(name.split("[")[0]) + "==" + version
            for name, version in (
                r.split(";")[0].strip().split("==") for r in requirements(group) if "==" in r
            )
        }
        assert pins - locked(lock) == set(), f"run `make lock`: {lock} is behind pyproject.toml"
