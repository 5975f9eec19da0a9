"""The Operations page: periodic jobs, the task queue, failures, the mirror's age, and "Sync now".

It sits on top of governance (beside admin and the commands): it reads the mirror, the task queue and
the scheduler's rows, and its one write (a sync request) is audited like every other change.
"""
