"""PostgreSQL only: trigram indexes for the catalogue's text search.

The search (registry_ui.filters.ModelFilterSet.filter_q) is `name OR description OR tags` icontains,
which Django writes as UPPER(col::text) LIKE UPPER('%term%'): a B-tree cannot serve a leading
wildcard, a GIN trigram index on the same UPPER(...) expression can (PostgreSQL combines the three
with a BitmapOr when the term is selective; for a common term it still scans the table, which is
then the cheaper plan). pg_trgm is a trusted extension: the database owner may create it. SQLite has
no such index; its search stays a scan of the models table.
"""

from django.db import migrations

INDEXES = {
    "registeredmodel_name_trgm": "UPPER(name::text)",
    "registeredmodel_description_trgm": "UPPER(description::text)",
    "registeredmodel_tags_trgm": "UPPER(tags::text)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON registry_ui_registeredmodel "
                              f"USING gin (({expression}) gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("registry_ui", "0007_metric_history_sync_fields"),
    ]

    operations = [migrations.RunPython(create, drop)]
