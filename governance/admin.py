"""Admin registrations, one module per area (imported here because Django autodiscovers admin.py)."""

from governance.workflow import admin as admin_workflow  # noqa: F401
