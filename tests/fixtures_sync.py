"""Fixtures of the sync tests (registered in tests/conftest.py)."""
