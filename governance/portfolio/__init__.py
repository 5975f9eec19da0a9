"""The model-risk portfolio: every visible model by tier and state (open findings by severity, last
deploy, drift, re-review overdue), for approvers, auditors and admins; CSV export. It reads the
workflow's deploys and re-certification queue, so it sits above the workflow (pyproject layers)."""
