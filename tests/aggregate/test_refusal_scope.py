"""A refused request is logged by its route template and screened parameters, never by its raw path.

The attacks: a caller without the right role asks for a path whose segment
is a BSN, and for a path 60,000 characters long. Both are refused (403) and
logged, and neither the audit entry nor any log line holds the BSN or the
long segment. Controls: the grep finds a BSN when it is there, and a harmless
parameter value is kept as it was, so the screen does not simply drop
everything.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.aggregate.conftest import PERIOD, AggregateEnv
from ttp.request_scope import MAX_PARAMS, SCREENED, safe_value

BSN = "111222333"  # passes the 11-proef


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record the service wrote (``ttp.*``; not the test client's own), with its fields, as text."""
    return "\n".join(json.dumps({**r.__dict__, "args": None, "exc_info": None}, default=str)
                     for r in caplog.records if r.name.startswith("ttp."))


def test_a_bsn_in_a_refused_path_reaches_neither_the_log_nor_a_log_line(
    aggregate_env: AggregateEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = aggregate_env.client("provider-98000001").get(f"/v1/gemeenten/{BSN}/outcomes", params={"period": BSN})
    assert resp.status_code == 403
    refusal = aggregate_env.sink.of("refusal")[-1]
    assert refusal.subject["route"] == "/v1/gemeenten/{gemeenteCode}/outcomes"
    assert refusal.subject["params"] == {"gemeenteCode": SCREENED, "period": SCREENED}
    assert BSN not in json.dumps(refusal.model_dump())
    logged = _logged(caplog)
    assert "refused" in logged and BSN not in logged
    # control: the grep is not vacuous, and the request really carried the BSN in its path
    assert BSN in json.dumps({"path": f"/v1/gemeenten/{BSN}/outcomes"})


def test_control_the_old_raw_path_entry_would_have_been_caught(
    aggregate_env: AggregateEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Negative control: with the entry built as before (the raw path), the same attack leaves the BSN in the log."""
    import ttp.identity

    monkeypatch.setattr(ttp.identity, "loggable_request", lambda request: {"path": request.url.path})
    aggregate_env.client("provider-98000001").get(f"/v1/gemeenten/{BSN}/outcomes", params={"period": PERIOD})
    assert BSN in json.dumps(aggregate_env.sink.of("refusal")[-1].model_dump())


def test_a_60000_character_path_is_refused_and_logged_bounded(
    aggregate_env: AggregateEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    segment = "A" * 60_000
    query = {f"p{i}": "x" for i in range(40)}
    resp = aggregate_env.client("provider-98000001").get(f"/v1/gemeenten/{segment}/outcomes", params=query)
    assert resp.status_code == 403
    refusal = aggregate_env.sink.of("refusal")[-1]
    entry = json.dumps(refusal.model_dump())
    assert len(entry) < 1_000 and "AAAAAAAA" not in entry
    assert refusal.subject["params"]["gemeenteCode"] == SCREENED
    assert len(refusal.subject["params"]) == MAX_PARAMS + 1  # eight kept, the rest counted under "omitted"
    assert refusal.subject["params"]["omitted"] == str(1 + 40 - MAX_PARAMS)
    assert "AAAAAAAA" not in _logged(caplog)


def test_control_a_harmless_parameter_is_kept_as_it_was(aggregate_env: AggregateEnv) -> None:
    resp = aggregate_env.client("gemeente-GM0363").get("/v1/gemeenten/GM0599/outcomes", params={"period": PERIOD})
    assert resp.status_code == 403
    assert aggregate_env.sink.of("refusal")[-1].subject["params"] == {"gemeenteCode": "GM0599", "period": PERIOD}


@pytest.mark.parametrize(("value", "kept"), [
    ("GM0363", True), ("2026-H1", True), ("98000001", True), ("R-2026-0001", True),
    (BSN, False), (f"x{BSN}y", False), ("2012-03-04", False), ("20120304", False), ("1234AB", False),
    ("a" * 65, False), ("a/b", False), ("", False),
])
def test_what_a_parameter_value_may_be(value: str, kept: bool) -> None:
    assert safe_value(value) is kept
