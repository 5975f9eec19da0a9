"""Fixtures of the audit tests (registered in tests/conftest.py)."""
