"""Admin for workflow objects, policy gates, model scoping and object grants. Owned by the workflow issue."""
