"""The mirror of MLflow's registry: the one MLflow client (`client`, the only importer of mlflow), the
sync that reconciles MLflow into the mirror tables (`sync`), the webhook receiver that makes it prompt
(`webhooks`), the mirror models and the metric histories."""
