"""API tokens for pipelines: django-rest-knox's hashed, expiring tokens with a name, a scope and the
time of last use; issued and revoked through services that audit it."""
