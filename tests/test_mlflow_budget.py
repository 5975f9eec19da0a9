"""MLflow calls wait as long as the calling context's budget says, per thread: two threads with
different budgets talk to the same slow server at once and each gets its own timeout (the budget is a
ContextVar, never a process-wide environment variable)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from registry_ui.mirror import client as gw

DELAY = 2.0


class SlowRegistry(BaseHTTPRequestHandler):
    """Answers every registered-model read after DELAY seconds, and counts the requests."""

    hits = 0
    lock = threading.Lock()  # the server's threads count at once: += alone could lose one

    def do_GET(self):  # noqa: N802 - http.server's name
        with type(self).lock:
            type(self).hits += 1
        time.sleep(DELAY)
        body = json.dumps({"registered_model": {"name": "slow", "creation_timestamp": 1,
                                                "last_updated_timestamp": 1}}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the impatient caller has gone

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SlowRegistry.hits = 0
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_each_thread_waits_for_its_own_budget(slow_server):
    gw.configure()  # importing mlflow takes seconds; keep it out of the timed calls
    results = {}

    def call(label, budget):
        started = time.monotonic()
        try:
            record = gw.get_registered_model("slow", uri=slow_server, budget=budget)
            results[label] = ("ok", record.name if record else None, time.monotonic() - started)
        except gw.MlflowUnavailable:
            results[label] = ("unavailable", None, time.monotonic() - started)

    # Interleaved, so that a budget shared through the process (an environment variable) would hand
    # some hasty calls a patient timeout and the other way round.
    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=call, args=(f"patient{i}", gw.Budget(timeout=DELAY * 4, retries=0))))
        threads.append(threading.Thread(target=call, args=(f"hasty{i}", gw.Budget(timeout=1, retries=0))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for i in range(6):
        assert results[f"hasty{i}"][0] == "unavailable" and results[f"hasty{i}"][2] < DELAY
        assert results[f"patient{i}"][:2] == ("ok", "slow") and results[f"patient{i}"][2] >= DELAY
    # retries=0: nobody re-sent a request, so the server saw at most one per call (a retry would add
    # more). A hasty caller may give up before the busy server read its request at all; one it did read
    # is counted a moment later: let the count settle first.
    time.sleep(1)
    assert 6 <= SlowRegistry.hits <= 12


def test_retries_come_from_the_budget(slow_server):
    with pytest.raises(gw.MlflowUnavailable):
        gw.get_registered_model("slow", uri=slow_server, budget=gw.Budget(timeout=1, retries=1))
    time.sleep(DELAY)  # let the server finish counting the re-sent read
    assert SlowRegistry.hits == 2
