"""Validation before promotion: a run per (version, policy spec, incumbent), executed by a task in a
child process (registry_ui.mirror.validation), stored as evidence, read by the workflow's gates."""
