"""Run several commands as one (the demo: web server, task worker, scheduler).

- SIGINT (Ctrl-C) or SIGTERM to the supervisor stops every child: SIGTERM to each, SIGKILL after a grace.
- A child that exits stops the others: a demo with a dead worker would look alive and do nothing.
- No orphans: each child runs in its own session (a terminal's Ctrl-C reaches only the supervisor, which
  stops the children in order) and, on Linux, asks the kernel for SIGTERM when its parent dies, so even a
  SIGKILLed supervisor leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # runs in the child between fork and exec
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


class Supervisor:
    def __init__(self, commands: dict[str, list[str]], *, env: dict[str, str] | None = None,
                 log: Callable[[str], None] = print, grace: float = 10.0):
        self.commands, self.env, self.log, self.grace = commands, env, log, grace
        self.children: dict[str, subprocess.Popen] = {}
        self._stop_signal: int | None = None

    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signum

    def run(self) -> int:
        """Start every command, wait until a signal or a child's exit, stop the rest. Returns the exit
        code: 0 when stopped by a signal, else the code of the child that exited first (1 if it was 0)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for name, argv in self.commands.items():
                self.children[name] = subprocess.Popen(argv, env=self.env, preexec_fn=_child_setup)  # noqa: PLW1509
                self.log(f"  {name:<9} pid {self.children[name].pid}: {' '.join(argv[1:])}")
            code = 0
            while self._stop_signal is None:
                exited = [(n, p.returncode) for n, p in self.children.items() if p.poll() is not None]
                if exited:
                    name, rc = exited[0]
                    self.log(f"{name} exited with status {rc}: stopping the others")
                    code = rc or 1
                    break
                time.sleep(0.2)
            else:
                self.log(f"{signal.Signals(self._stop_signal).name}: stopping {', '.join(self.children)}")
            self.stop()
            return code
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        for process in self.children.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        start = time.monotonic()
        deadline = start + self.grace
        for name, process in self.children.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{name} still running after {self.grace:.0f} s: killed")
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
            self.log(f"  {name:<9} stopped ({time.monotonic() - start:.1f} s)")
