"""`manage.py benchmark`: sync and pages at registry scale, measured against MLflow itself."""
