"""/api/v1/requests/: the workflow over REST."""
