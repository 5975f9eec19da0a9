"""Periodic jobs without cron: a job registry named in settings, a row per job in the database, and the
loop of `manage.py scheduler` that enqueues each job's task when it is due (see loop.py)."""
