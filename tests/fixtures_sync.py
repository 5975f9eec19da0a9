"""Fixtures of the sync tests (registered in tests/conftest.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

MIRROR_TABLES = ("registry_ui_registeredmodel", "registry_ui_modelversion", "registry_ui_modelalias",
                 "registry_ui_runsnapshot", "registry_ui_datasetinput", "registry_ui_metrichistory",
                 "governance_auditevent")


def writes_to(queries, tables=MIRROR_TABLES) -> list[str]:
    """The INSERT/UPDATE/DELETE statements among `queries` that touch one of `tables`."""
    found = []
    for q in queries:
        sql = q["sql"].lstrip().upper()
        if sql.startswith(("INSERT", "UPDATE", "DELETE")) and any(t.upper() in sql for t in tables):
            found.append(q["sql"])
    return found


@pytest.fixture
def capture_writes():
    """with capture_writes() as ctx: ...; writes_to(ctx.captured_queries)"""
    return lambda: CaptureQueriesContext(connection)


@pytest.fixture
def synced(use_mlflow_server):
    """sync(name) runs a targeted sync of one model against the session's MLflow server; full() a full one."""
    from registry_ui.mirror.sync import sync_model, sync_registry

    class Sync:
        def __call__(self, name):
            return sync_model(name, uri=use_mlflow_server.url)

        def full(self, **kwargs):
            return sync_registry(uri=use_mlflow_server.url, **kwargs)

    return Sync()
