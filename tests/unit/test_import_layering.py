"""Imports run downhill (ARCHITECTURE.md, "Layers"): read from the source, nothing imported or run.

A lower layer that needs something of a higher one gets it passed in (a callback, a registry filled
in an ``AppConfig.ready()``); these tests fail when an import goes up instead, or closes a cycle.
"""

from __future__ import annotations

import ast
import functools
import graphlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("accounts", "classroom", "cluster", "lessons", "ops", "sandbox", "tutorial")
SKIPPED = {"migrations", "__pycache__", "content"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if SKIPPED & set(path.relative_to(ROOT).parts):
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()
# Each module is read and parsed once for the whole file: several tests below walk every module.
SOURCES = {module: path.read_text(encoding="utf-8") for module, path in MODULES.items()}
TREES = {module: ast.parse(source) for module, source in SOURCES.items()}


def _resolve(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> list[tuple[str, bool]]:
    """(project module imported, whether the import is inside a function) for one module."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        return [f"{base}.{alias.name}" for alias in node.names]

    def visit(node, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in {_resolve(t) for t in targets(child)}:
                    if target and target != module:
                        found.append((target, in_function))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            else:
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(TREES[module], False)
    return found


IMPORTS = {module: _imports(module) for module in MODULES}


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _offenders(importers: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, imported in IMPORTS.items() if _under(module, *importers)
        for target, _local in imported
        if _under(target, *forbidden) and not _under(target, *allowed)
    )


def test_no_import_cycle_even_counting_imports_inside_functions():
    graph = {module: {target for target, _local in imported} for module, imported in IMPORTS.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_project_modules_are_imported_inside_functions_only_where_django_loads_apps():
    local = sorted(f"{module} -> {target}" for module, imported in IMPORTS.items()
                   for target, inside in imported if inside and not module.endswith(".apps"))
    assert local == []


@pytest.mark.parametrize(("importers", "forbidden", "allowed"), [
    # The sandbox layer knows nothing of the apps above it.
    (("sandbox",), ("lessons", "classroom", "ops", "accounts"), ()),
    # The engine leaf speaks to the Docker engine and imports nothing of the project above it.
    (("sandbox.engine",), PACKAGES, ("sandbox.engine",)),
    # The gateway gets touch/notify/the idle timeout passed in: it imports only the engine leaf.
    (("sandbox.gateway",), ("sandbox", "lessons", "classroom", "ops", "accounts"), ("sandbox.gateway", "sandbox.engine")),
    # Backends: the contract and the engine, below the services.
    (("sandbox.backends",), ("sandbox", "lessons", "classroom"),
     ("sandbox.backends", "sandbox.gateway", "sandbox.engine")),
    # Image recipes are data the builder, services and lesson loader read: nothing of theirs.
    (("sandbox.images",), ("sandbox", "lessons", "classroom"), ("sandbox.images", "sandbox.engine")),
    # Pure policy, data and rules, and the modules below the services.
    (("sandbox.models", "sandbox.protocol", "sandbox.lifecycle", "sandbox.permissions",
      "sandbox.engines", "sandbox.tasks", "sandbox.capacity", "sandbox.events"),
     ("sandbox.services", "sandbox.pool", "sandbox.reaper", "sandbox.consumers", "sandbox.home_files"), ()),
    # The warm pool is used by the services, never the other way round.
    (("sandbox.pool",), ("sandbox.services",), ()),
    (("lessons",), ("classroom", "ops"), ()),
    # The lesson engine, one module per concept, from the bottom up: markdown and front matter
    # (leaves), the lesson values, the loader, the catalogue; progress, then checks and quizzes.
    (("lessons.markdown", "lessons.front_matter", "lessons.feedback"), PACKAGES, ()),
    (("lessons.lesson",), PACKAGES, ("lessons.markdown",)),
    (("lessons.loader",), ("lessons", "sandbox", "classroom", "ops"),
     ("lessons.markdown", "lessons.front_matter", "lessons.feedback", "lessons.lesson", "sandbox.images")),
    (("lessons.catalogue",), ("lessons", "sandbox", "classroom", "ops"), ("lessons.lesson", "lessons.loader")),
    (("lessons.progress",), ("lessons", "sandbox", "classroom", "ops"), ("lessons.lesson", "lessons.models")),
    (("lessons.checks", "lessons.quizzes"), ("lessons", "classroom", "ops"),
     ("lessons.lesson", "lessons.models", "lessons.progress", "lessons.feedback")),
    (("lessons.quizzes",), ("sandbox",), ()),
    # The local cluster is a leaf package: no Django, none of the site.
    (("cluster",), ("sandbox", "lessons", "classroom", "accounts", "ops", "tutorial"), ()),
])
def test_imports_run_downhill(importers, forbidden, allowed):
    assert _offenders(importers, forbidden, allowed) == []


def test_the_cluster_package_does_not_import_django():
    django = sorted(str(MODULES[m].relative_to(ROOT)) for m in MODULES if _under(m, "cluster")
                    if any(_under(name, "django") for name in _third_party(m)))
    assert django == []


def _third_party(module: str) -> set[str]:
    names = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


@functools.cache
def _assigned_names(module: str) -> frozenset[str]:
    return frozenset(target.id for node in ast.walk(TREES[module]) if isinstance(node, ast.Assign)
                     for target in node.targets if isinstance(target, ast.Name))


@pytest.mark.parametrize("name", ["API_VERSION", "LABEL_SANDBOX", "LABEL_INSTALL", "LABEL_ROLE", "LABEL_WORKSPACE"])
def test_engine_facts_are_stated_once_in_the_engine_leaf(name):
    """The API version and the label names are assigned in one module; everyone else imports them."""
    where = sorted(module for module in MODULES if name in _assigned_names(module))
    assert len(where) == 1 and where[0].startswith("sandbox.engine."), where


def test_one_reader_of_the_engines_output_frames():
    """The 8-byte frame header is parsed in one place (sandbox.engine.frames)."""
    readers = sorted(module for module, source in SOURCES.items() if ">BxxxL" in source)
    assert readers == ["sandbox.engine.frames"]


def test_the_engine_down_message_is_written_once():
    writers = sorted(module for module, source in SOURCES.items() if "Docker engine does not answer at" in source)
    assert writers == ["sandbox.engine.api"]


def test_only_views_and_consumers_speak_http():
    """Services, rules and lookups raise their own errors; the views turn them into answers. (The
    web preview is a view of its own; the texts module reads a request's language only.)"""
    speaking = sorted(module for module, source in SOURCES.items()
                      if _under(module, "classroom", "sandbox") and "django.http" in source
                      and not module.endswith(("views", "sandbox.preview", "sandbox.texts")))
    assert speaking == []


def test_tests_take_helpers_from_factories_not_from_a_conftest():
    """Fixtures live in conftest files and reach tests by name; helpers are imported from
    tests/factories.py, tests/fakes.py, tests/websockets.py or tests/e2e/browser.py. Importing a
    conftest runs it twice."""
    importing = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")
                       if re.search(r"^\s*from tests(\.\w+)*\.conftest import|^\s*from \.conftest import|import \*",
                                    path.read_text(encoding="utf-8"), re.M))
    assert importing == []
