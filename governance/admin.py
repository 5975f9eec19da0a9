"""Admin registrations, one module per area (imported here because Django autodiscovers admin.py)."""

from governance import admin_audit, admin_workflow  # noqa: F401
