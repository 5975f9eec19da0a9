"""Layering rules from shared/CONVENTIONS.md, enforced."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(package: str):
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def test_only_the_gateway_imports_mlflow():
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("registry_ui", "governance")
        for p in python_files(package)
        if p.name != "mlflow_gateway.py" and any(m == "mlflow" or m.startswith("mlflow.") for m in imported_modules(p))
    ]
    assert offenders == []


def test_registry_ui_never_imports_governance():
    allowed = {"settings.py", "urls.py"}
    offenders = [
        str(p.relative_to(ROOT))
        for p in python_files("registry_ui")
        if p.name not in allowed and any(m == "governance" or m.startswith("governance.") for m in imported_modules(p))
    ]
    assert offenders == []


def test_only_audit_module_creates_audit_events():
    offenders = []
    for package in ("registry_ui", "governance"):
        for p in python_files(package):
            if p.name == "audit.py" and p.parent.name == "governance":
                continue
            text = p.read_text()
            if re.search(r"(?<!class )AuditEvent\(|AuditEvent\.objects\.(bulk_)?create", text):
                offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []
