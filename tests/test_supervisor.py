"""The supervisor restarts a service that died, backs off while it keeps dying, and gives up clearly.

Real child processes stand in for the services (``python -c ...``), with a
fast restart policy, so each case takes a second or two. ``tests/e2e/test_up.py``
does the same with the five real services through ``ttp up``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from ttp.supervisor import GaveUp, RestartPolicy, Supervisor, exit_description, stop_processes

FAST = RestartPolicy(first_delay=0.1, max_delay=0.4, stable_after=1.5, max_fast_failures=3)


def child(code: str) -> Callable[[str], subprocess.Popen[bytes]]:
    return lambda _name: subprocess.Popen([sys.executable, "-c", code])


SLEEPER = "import time; time.sleep(60)"
CRASHER = "import sys; sys.exit(3)"


def run_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        supervisor.poll()
        time.sleep(0.02)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "serviceName", None) == name]


def test_a_killed_service_is_restarted_and_the_others_keep_running(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ttp.supervisor")
    sup = Supervisor(child(SLEEPER), FAST)
    try:
        first = {name: sup.start(name) for name in ("audit", "aggregate", "ingest")}
        first["aggregate"].send_signal(signal.SIGKILL)
        run_until(sup, lambda: sup.processes["aggregate"].pid != first["aggregate"].pid)
        assert sup.processes["aggregate"].poll() is None  # running again
        assert all(sup.processes[n] is first[n] and first[n].poll() is None for n in ("audit", "ingest"))
        kinds = [(r.event, r.levelname) for r in events(caplog, "aggregate")]
        assert kinds == [("service-started", "INFO"), ("service-exited", "WARNING"),
                         ("service-restarted", "WARNING")]
        exited = events(caplog, "aggregate")[1]
        assert exited.exitCode == -signal.SIGKILL and "killed by SIGKILL" in exited.getMessage()
    finally:
        sup.stop()
    assert all(p.poll() is not None for p in sup.processes.values())


def test_a_service_that_keeps_failing_at_start_is_given_up_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ttp.supervisor")
    sup = Supervisor(child(CRASHER), FAST, log_hint=lambda name: f"var/log/{name}.log")
    started = time.monotonic()
    sup.start("pseudonymise")
    with pytest.raises(GaveUp) as gave_up:
        run_until(sup, lambda: False)
    took = time.monotonic() - started
    message = str(gave_up.value)
    assert gave_up.value.service == "pseudonymise"
    assert "pseudonymise exited 4 times in a row" in message and "exit status 3" in message
    assert "var/log/pseudonymise.log" in message
    delays = [r.restartInSeconds for r in events(caplog, "pseudonymise") if r.event == "service-exited"]
    assert delays == [0.1, 0.2, 0.4]  # doubling, capped at max_delay
    assert took >= sum(delays)
    assert [r.event for r in events(caplog, "pseudonymise")].count("service-restarted") == 3
    assert events(caplog, "pseudonymise")[-1].event == "service-given-up"


def test_a_run_that_lasted_resets_the_backoff(caplog: pytest.LogCaptureFixture) -> None:
    """A service that ran for a while and then died is restarted after the first delay again."""
    caplog.set_level(logging.INFO, logger="ttp.supervisor")
    now = [0.0]
    sup = Supervisor(child(SLEEPER), FAST, clock=lambda: now[0])
    try:
        proc = sup.start("report")
        for _ in range(3):  # three exits in a row, each long after the start
            now[0] += 10.0
            proc.kill()
            proc.wait()
            sup.poll()
            now[0] += 1.0
            sup.poll()
            proc = sup.processes["report"]
        exits = [r for r in events(caplog, "report") if r.event == "service-exited"]
        assert [r.failures for r in exits] == [1, 1, 1]
        assert [r.restartInSeconds for r in exits] == [0.1, 0.1, 0.1]
    finally:
        sup.stop()


def test_stop_ends_every_service_in_reverse_start_order(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    procs = {name: subprocess.Popen([sys.executable, "-c", SLEEPER]) for name in ("audit", "aggregate", "ingest")}
    sup = Supervisor(lambda name: procs[name], FAST)
    for name in procs:
        sup.start(name)
    real_terminate = subprocess.Popen.terminate

    def spy(self: subprocess.Popen[bytes]) -> None:
        order.append(next(n for n, p in procs.items() if p is self))
        real_terminate(self)

    monkeypatch.setattr(subprocess.Popen, "terminate", spy)
    sup.stop(timeout=5)
    assert order == ["ingest", "aggregate", "audit"]
    assert all(p.returncode == -signal.SIGTERM for p in procs.values())


def test_stop_kills_a_process_that_ignores_sigterm() -> None:
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    stop_processes([stubborn], timeout=0.5)
    assert stubborn.returncode == -signal.SIGKILL


def test_exit_descriptions_name_the_signal() -> None:
    assert exit_description(-9) == "killed by SIGKILL"
    assert exit_description(1) == "exit status 1"
