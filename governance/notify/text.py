"""What people read: one-line summaries of events (mail subjects, Slack text)."""


def summary(kind: str, data: dict) -> str:
    """One line for people (mail subjects, the Slack text)."""
    what = f"{data.get('model')} v{data.get('version')}" if data.get("version") else str(data.get("model"))
    target = f" -> {data['target']}" if data.get("target") else ""
    actor = data.get("actor") or "someone"
    return {
        "request.created": f"{actor} asks to promote {what}{target}",
        "request.approved": f"{actor} approved {what}{target} (now {data.get('state')})",
        "request.rejected": f"{actor} rejected {what}{target}",
        "request.cancelled": f"{actor} cancelled the request for {what}{target}",
        "request.reapproval_required": f"{what}{target} needs approval again: a gate now fails on fresh evidence",
        "deploy.succeeded": f"Deployed {what}{target}",
        "deploy.failed": f"Deploy of {what}{target} failed",
        "registry.drift": f"Drift on {what}: changed in MLflow outside governance",
        "validation.finished": f"Validation of {what} finished",
        "finding.overdue": f"Open findings on {what} are past their due date",
    }.get(kind, f"{kind}: {what}")


def slack_text(payload: dict) -> str:
    data = payload.get("data", {})
    line = summary(payload.get("type", ""), data)
    return f"{line} <{data['url']}|open>" if data.get("url", "").startswith("http") else line
