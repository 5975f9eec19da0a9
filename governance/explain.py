"""Does a governance deployment account for a change the sync saw in MLflow?

The drift classifier (governance.drift) calls deployment_explains() for each stage or alias change
in a sync report; a change that no deployment explains is drift. The workflow issue implements it
from its deployment/outbox records.
"""


def deployment_explains(*, model_name: str, version: int | None, kind: str, name: str,
                        before, after) -> bool:
    """kind: "stage" (name: "stage") or "alias" (name: the alias); before/after: old/new value."""
    return False
