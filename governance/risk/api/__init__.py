"""/api/v1/risk/: risk tiers and findings for pipelines and scripts (the same services as the pages)."""
