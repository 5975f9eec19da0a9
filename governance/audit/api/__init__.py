"""/api/v1/audit/: search and verification over REST (read-only)."""
