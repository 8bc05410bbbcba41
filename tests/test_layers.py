"""The layers import in one direction only: checked over the source of every module, whatever files exist.

engine/ is pure image-to-video code (no Django, nothing of the app); services/, storage/ and
contract/ are below the web layers and never import views or the API; nothing but URL
configuration imports the dashboard's views.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "generator"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved, at any depth (function bodies too)."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(package: str, forbidden: tuple[str, ...], *, allowed: tuple[str, ...] = ()) -> list[str]:
    problems = []
    for path in _modules(package):
        for name in sorted(_imports(path)):
            if any(_under(name, bad) for bad in forbidden) and not any(_under(name, ok) for ok in allowed):
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
    return problems


def test_the_checker_sees_the_layers_it_guards():
    # A check over no files passes whatever the code does: make sure each guarded package is there.
    for package in ("generator.engine", "generator.services", "generator.storage", "generator.contract"):
        assert _modules(package), package
    assert "generator.services.billing" in _imports(APP / "services" / "generations.py")
    assert "django.db.transaction" in _imports(APP / "services" / "generations.py")


def test_engine_imports_neither_django_nor_the_app():
    assert _violations("generator.engine", ("django", "generator"), allowed=("generator.engine",)) == []


@pytest.mark.parametrize("package", ["generator.services", "generator.storage", "generator.contract"])
def test_lower_layers_import_no_views_and_no_api(package):
    assert _violations(package, ("generator.views", "generator.api", "generator.urls")) == []


def test_the_contract_does_not_reach_into_services():
    assert _violations("generator.contract", ("generator.services", "generator.selectors")) == []


def test_only_url_configuration_imports_the_dashboard_views():
    importers = []
    for path in [*APP.rglob("*.py"), *(ROOT / "config").rglob("*.py")]:
        name = _module_name(path)
        if _under(name, "generator.views") or name in {"generator.urls", "config.urls"}:
            continue
        importers += [f"{name} imports {i}" for i in sorted(_imports(path)) if _under(i, "generator.views")]
    assert importers == []
