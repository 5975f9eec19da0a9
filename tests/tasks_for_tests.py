"""Tasks that exist only to prove the worker fixture runs real tasks (the worker imports them by path)."""

from django_tasks import task


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def fail(message: str) -> None:
    raise RuntimeError(message)


@task()
def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "rested"
