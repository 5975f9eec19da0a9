"""Fixtures of the workflow tests (registered in tests/conftest.py)."""
