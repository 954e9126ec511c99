"""The portal's own settings (``TTP_PORTAL_*``), beside the TTP-wide ``ttp.settings.Settings``.

The portal is configured apart from the services because its knobs are about people, not
parties: which OpenID provider they sign in at, which token claim carries their
organisation's OIN, how long an idle session lives.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ttp.settings import Settings


class PortalSettings(BaseSettings):
    """Sign-in and session settings of the portal."""

    model_config = SettingsConfigDict(env_prefix="TTP_PORTAL_", extra="ignore")

    #: The URL people use, without a trailing slash; default ``https://localhost:<portal port>``.
    public_url: str = ""
    #: The OpenID provider's issuer (its discovery document is at ``/.well-known/openid-configuration``).
    oidc_issuer: str = ""
    oidc_client_id: str = "ttp-portal"
    #: File holding the client secret; default ``<home>/portal/oidc-client-secret`` (written by ``ttp up``).
    oidc_client_secret_file: Path | None = None
    #: CA bundle to verify the OpenID provider with; default the dev CA (``<pki>/ca.pem``).
    oidc_ca_file: Path | None = None
    #: The claim (ID token or userinfo) that carries the organisation's OIN. eHerkenning brokers
    #: name it differently; the embedded provider calls it ``oin``.
    oin_claim: str = "oin"
    #: Port of the embedded OpenID provider that ``ttp up`` starts.
    dev_idp_port: int = 8447
    #: File with the key that signs session cookies; created (32 random bytes) if missing.
    session_key_file: Path | None = None
    #: Seconds without a request after which a session ends (BIO: at most 15 minutes).
    idle_timeout: int = 900
    #: Seconds after sign-in after which the session ends regardless of activity.
    session_max_age: int = 8 * 3600


@dataclass(frozen=True)
class PortalConfig:
    """Everything the portal app needs, resolved to concrete values and paths."""

    settings: Settings
    portal: PortalSettings

    @property
    def public_url(self) -> str:
        return (self.portal.public_url or f"https://localhost:{self.settings.portal_port}").rstrip("/")

    @property
    def issuer(self) -> str:
        return (self.portal.oidc_issuer or f"https://localhost:{self.portal.dev_idp_port}").rstrip("/")

    @property
    def state_dir(self) -> Path:
        return self.settings.home / "portal"

    @property
    def client_secret_file(self) -> Path:
        return self.portal.oidc_client_secret_file or self.state_dir / "oidc-client-secret"

    @property
    def oidc_ca_file(self) -> Path:
        return self.portal.oidc_ca_file or self.settings.pki / "ca.pem"

    @property
    def session_key_file(self) -> Path:
        return self.portal.session_key_file or self.state_dir / "session.key"

    def client_secret(self) -> str:
        return self.client_secret_file.read_text(encoding="utf-8").strip()

    def session_key(self) -> str:
        """The cookie-signing key, created with owner-only permissions on first use."""
        return read_or_create_secret(self.session_key_file)


def read_or_create_secret(path: Path) -> str:
    """A 256-bit secret from ``path``, written there (mode 0600) if the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process wrote it first; read theirs
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(32))
    return path.read_text(encoding="utf-8").strip()
