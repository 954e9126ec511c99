"""Start the five services as processes and keep them running: restart one that dies, with backoff.

``ttp up`` used to stop the whole system when one service exited: an
out-of-memory kill of aggregate took the audit log and ingest down with it.
An operator expects what systemd or Docker's ``restart: unless-stopped`` do:
the dead service is started again, the others keep serving, and the restart
is logged. A service that cannot start at all (a missing key, a port in use)
must not be restarted in a tight loop forever, though: after
``max_fast_failures`` exits in a row, each soon after starting, the supervisor
gives up with a message that says which service and where its log is.

``spawn_service`` is also how the local cluster of the tests and benchmarks
starts a service, so both run the services the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ttp.private_files import private_dir, private_opener

#: Start order: the audit log first (everyone appends to it), ingest last (it needs all others).
START_ORDER = ("audit", "pseudonymise", "aggregate", "report", "ingest")

log = logging.getLogger("ttp.supervisor")


def stderr_path(log_dir: Path, service: str) -> Path:
    """Where a service's raw stderr goes: only what it writes before its JSON logging is set up
    (an import error, an interpreter crash); its log lines go to ``<service>.log``."""
    return log_dir / f"{service}.stderr"


def spawn_service(
    service: str, log_dir: Path, env: Mapping[str, str] | None = None, *, own_process_group: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``ttp serve <service>`` logging to its rotated file in ``log_dir``.

    ``own_process_group`` keeps a Ctrl-C in the terminal away from the
    service, so the supervisor stops the services itself, in order.
    """
    private_dir(log_dir)
    with open(stderr_path(log_dir, service), "ab", opener=private_opener) as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ttp", "serve", service],
            env={**os.environ, **(env or {}), "TTP_LOG_DESTINATION": "file"},
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            process_group=0 if own_process_group else None,
        )


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """Stop each process in turn (SIGTERM, then SIGKILL after ``timeout``), in the order given."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def exit_description(code: int) -> str:
    """``exit status 3`` or ``killed by SIGKILL``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart a service that exited, and when to stop trying."""

    #: Seconds before the first restart; doubled after each further fast failure.
    first_delay: float = 1.0
    max_delay: float = 30.0
    #: A run at least this long counts as a success: the next exit starts the backoff afresh.
    stable_after: float = 60.0
    #: Give up after this many exits in a row, each within ``stable_after`` of starting.
    max_fast_failures: int = 5


class GaveUp(RuntimeError):
    """A service kept exiting soon after it started; it was not restarted again."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    started: float
    fast_failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Keeps the named services running; call ``poll`` every fraction of a second."""

    def __init__(
        self,
        start: Callable[[str], subprocess.Popen[bytes]],
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        log_hint: Callable[[str], str] = lambda name: name,
    ) -> None:
        self._start = start
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._log_hint = log_hint
        self._children: dict[str, _Child] = {}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start ``name`` for the first time."""
        proc = self._start(name)
        self._children[name] = _Child(name, proc, self._clock())
        log.info("started %s", name, extra={"event": "service-started", "serviceName": name, "pid": proc.pid})
        return proc

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """The current process of each service (a restarted service has a new one)."""
        return {name: child.proc for name, child in self._children.items()}

    def poll(self) -> None:
        """Restart what died and is due; raise ``GaveUp`` for a service that keeps failing at start."""
        now = self._clock()
        for child in self._children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child, now)
                continue
            code = child.proc.poll()
            ran = now - child.started
            if code is None:
                if child.fast_failures and ran >= self.policy.stable_after:
                    child.fast_failures = 0
                continue
            child.fast_failures = child.fast_failures + 1 if ran < self.policy.stable_after else 1
            how = exit_description(code)
            if child.fast_failures > self.policy.max_fast_failures:
                message = (f"{child.name} exited {child.fast_failures} times in a row, each within "
                           f"{self.policy.stable_after:.0f} s of starting (last: {how}); not restarting it "
                           f"again. See {self._log_hint(child.name)}.")
                log.error(message, extra={"event": "service-given-up", "serviceName": child.name,
                                          "exitCode": code, "failures": child.fast_failures})
                raise GaveUp(child.name, message)
            delay = min(self.policy.max_delay, self.policy.first_delay * 2 ** (child.fast_failures - 1))
            log.warning("%s stopped (%s) after %.1f s; restarting it in %.1f s", child.name, how, ran, delay,
                        extra={"event": "service-exited", "serviceName": child.name, "exitCode": code,
                               "ranSeconds": round(ran, 3), "restartInSeconds": delay,
                               "failures": child.fast_failures})
            child.restart_at = now + delay

    def _restart(self, child: _Child, now: float) -> None:
        child.proc = self._start(child.name)
        child.started = now
        child.restart_at = None
        log.warning("restarted %s", child.name, extra={"event": "service-restarted", "serviceName": child.name,
                                                        "pid": child.proc.pid, "failures": child.fast_failures})

    def stop(self, order: Sequence[str] | None = None, timeout: float = 15.0) -> None:
        """Stop every service, by default in reverse start order (callers first, the audit log last,
        so their last audit events still have somewhere to go)."""
        names = list(order or reversed(list(self._children)))
        stop_processes([self._children[n].proc for n in names if n in self._children], timeout)
        log.info("stopped", extra={"event": "services-stopped"})
