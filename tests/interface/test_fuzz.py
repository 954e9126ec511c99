"""Schemathesis fuzzes every live service over mutual TLS against its committed OpenAPI document.

One ``schemathesis run`` per service, all phases (the document's examples,
coverage with boundary and invalid values, random fuzzing, and stateful
sequences where links between operations can be inferred), a bounded number
of examples and a fixed seed, so CI is repeatable and stays within minutes.
``TTP_FUZZ_EXAMPLES`` and ``TTP_FUZZ_SEED`` widen or vary a run by hand.

Each operation is called with the certificate of a party that may use it (the
role is read from the route's ``require_roles`` dependency), so the fuzzer gets
past the 403 and reaches validation and the domain logic.

Checks: no 5xx; status code, content type, headers (API-Version) and body
schema as documented; invalid input rejected with 4xx; missing required
headers and undocumented methods refused, with a correct ``Allow`` header.
``positive_data_acceptance`` is off: schema-valid requests are legitimately
refused on domain grounds the schema cannot express (another party's
resources: 403; unknown ids: 404; the audit log's event rules: 400).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers.cluster import Cluster
from tests.interface.conftest import MAIN_CALLER, caller
from ttp.openapi_export import document_path
from ttp.pki import cert_paths

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = int(os.environ.get("TTP_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("TTP_FUZZ_SEED", "20260701"))
#: Every check schemathesis has, except positive_data_acceptance (see the module docstring).
CHECKS_OFF = ("positive_data_acceptance",)
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

#: Operations whose schema-invalid input is, by design, answered with 2xx. postBatch: the SPEC
#: wants each record of a valid envelope accepted or rejected on its own, listed in the receipt,
#: so a malformed record gets a 200 receipt that rejects it, not a 400 for the batch.
INVALID_INPUT_ANSWERED_IN_BODY = {"postBatch"}


def _toml(value: object) -> str:
    """A TOML value for the simple types the config needs (JSON strings are valid TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def fuzz_config(cluster: Cluster, service: str) -> str:
    """schemathesis.toml for one service: TLS, the right certificate per operation, bounds."""
    pki = cluster.home / "pki"
    cert, key = cert_paths(pki, MAIN_CALLER[service])
    lines = [
        f"seed = {SEED}",
        "workers = 1",
        f"base-url = {_toml(cluster.base_url(service))}",
        f"tls-verify = {_toml(pki / 'ca.pem')}",
        f"request-cert = {_toml(cert)}",
        f"request-cert-key = {_toml(key)}",
        "request-timeout = 30",
        "",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',
        "",
        "[phases.stateful]",
        "max-steps = 12",
        "",
        "[checks]",
        *(f"{check}.enabled = false" for check in CHECKS_OFF),
    ]
    doc = json.loads(document_path(service).read_text(encoding="utf-8"))
    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            party = caller(service, method, path)
            op_cert, op_key = cert_paths(pki, party)
            lines += [
                "",
                "[[operations]]",
                f"include-operation-id = {_toml(op['operationId'])}",
                f"request-cert = {_toml(op_cert)}",
                f"request-cert-key = {_toml(op_key)}",
            ]
            if op["operationId"] in INVALID_INPUT_ANSWERED_IN_BODY:
                lines.append("checks.negative_data_rejection.enabled = false")
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_no_server_error_and_no_deviation(service: str, live: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(fuzz_config(live, service), encoding="utf-8")
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [str(SCHEMATHESIS), "--config-file", str(config), "--no-color", "run", str(document_path(service)),
         "--phases", "examples,coverage,fuzzing,stateful",
         "--report", "junit", "--report-junit-path", str(junit), "--output-truncate", "true"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.interface.schemathesis_hooks",
             "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"schemathesis found problems in {service}:\n{output[-12000:]}"
    # Every operation was selected and tested (a wrong certificate or filter would leave some out).
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-3000:]
    assert int(selected.group(1)) == int(selected.group(2)) == int(tested.group(1)), output[-3000:]
    assert junit.exists()
