"""The layering rules of docs/architecture.md, enforced.

The import rules are import-linter contracts in pyproject.toml (run here and by `make lint`); this file
adds the rules an import graph cannot express: who creates audit events, and that views never write.
"""

import ast
import os
import re
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent

# Calls that write rows. A view, API view or form that needs a write calls a service instead.
WRITE_METHODS = {"save", "create", "bulk_create", "update", "bulk_update", "delete", "get_or_create",
                 "update_or_create", "add", "remove", "clear", "set"}


def python_files(package: str):
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def view_modules():
    """Pages, API views and forms: the doors through which input arrives."""
    return [p for package in ("registry_ui", "governance") for p in python_files(package)
            if p.name in {"views.py", "forms.py"}]


def test_import_contracts_hold():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_only_the_audit_chain_creates_audit_events():
    offenders = []
    for package in ("registry_ui", "governance"):
        for p in python_files(package):
            if p.relative_to(ROOT).as_posix() == "governance/audit/chain.py":
                continue
            if re.search(r"(?<!class )AuditEvent\(|AuditEvent\.objects\.(bulk_)?create", p.read_text()):
                offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []


def orm_writes(path: Path) -> list[str]:
    """`<queryset or instance>.<write>(...)` calls, except on names that are plainly not models."""
    not_models = {"messages", "response", "params", "query", "qs_params", "seen", "errors", "headers",
                  "parts", "out", "result", "context", "data", "form", "fields", "cache", "names"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITE_METHODS:
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in not_models:
                continue
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()")
    return found


def test_views_and_forms_never_write_models():
    offenders = [w for p in view_modules() for w in orm_writes(p)]
    assert offenders == []


def test_the_write_check_sees_a_write():
    # A name of this process's own: CI runs the SQLite and PostgreSQL suites side by side in one checkout.
    sample = ROOT / "var" / f"architecture_sample_views_{os.getpid()}.py"
    sample.parent.mkdir(exist_ok=True)
    sample.write_text("def v(request):\n    PromotionRequest.objects.filter(pk=1).update(state='x')\n")
    try:
        assert orm_writes(sample) == [f"var/{sample.name}:2 .update()"]
    finally:
        sample.unlink()
