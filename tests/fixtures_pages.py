"""Fixtures of the pages tests (registered in tests/conftest.py)."""
