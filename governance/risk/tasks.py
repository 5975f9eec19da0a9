"""The overdue-findings reminder as a periodic job (settings.SCHEDULED_JOBS)."""

from django_tasks import task

from governance.risk.services import findings_remind
from registry_ui.scheduler.jobs import PeriodicJob


@task()
def findings_remind_task() -> dict:
    by_model = findings_remind()
    due = sum(len(ids) for ids in by_model.values())
    return {"outcome": "done", "detail": f"{due} overdue finding(s) on {len(by_model)} model(s)", "due": due}


FINDINGS_JOB = PeriodicJob(
    name="risk.findings_remind", task=findings_remind_task, interval_setting="RISK_FINDINGS_REMIND_INTERVAL",
    default=86400, description="remind owners and approvers of open findings past their due date")
