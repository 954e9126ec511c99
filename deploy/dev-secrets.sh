#!/usr/bin/env bash
# Rehearsal only: fill deploy/secrets/ and deploy/config/ from a development PKI, so that the
# production layout (docker-compose.yml) can be tried on one machine. Production secrets come
# from PKIoverheid and the organisation's secret store instead (deploy/OPERATIONS.md).
#
#   TTP_HOME=/tmp/ttp-rehearsal ttp pki init        # dev CA, certificates, log key, HMAC key
#   bash deploy/dev-secrets.sh /tmp/ttp-rehearsal deploy/secrets deploy/config
#
# Idempotent: existing database passwords are kept, everything else is copied again.
set -euo pipefail
home="${1:?usage: dev-secrets.sh TTP_HOME [SECRETS_DIR] [CONFIG_DIR]}"
secrets="${2:-deploy/secrets}"
config="${3:-deploy/config}"
pki="$home/pki"
keys="$home/keys"
mkdir -p "$secrets" "$config"
umask 077

cp "$pki/ca.pem" "$secrets/ca.pem"
for service in ingest pseudonymise aggregate report audit; do
  cp "$pki/servers/$service.pem" "$secrets/$service-server.pem"
  cp "$pki/servers/$service.key" "$secrets/$service-server.key"
  cp "$pki/clients/service-$service.pem" "$secrets/service-$service.pem"
  cp "$pki/clients/service-$service.key" "$secrets/service-$service.key"
done
cp "$pki/servers/portal.pem" "$secrets/portal-server.pem"
cp "$pki/servers/portal.key" "$secrets/portal-server.key"
cp "$pki/clients/service-portal.pem" "$secrets/service-portal.pem"
cp "$pki/clients/service-portal.key" "$secrets/service-portal.key"
# In production the OpenID provider issues the portal's client secret when the portal is registered.
[ -s "$secrets/portal-oidc-client-secret" ] || openssl rand -hex 32 > "$secrets/portal-oidc-client-secret"
[ -s "$secrets/portal-session.key" ] || openssl rand -hex 32 > "$secrets/portal-session.key"
for key in "$keys"/v*.key; do
  version=$(basename "$key" .key)
  cp "$key" "$secrets/pseudonym-key-$version"
done
cp "$pki/audit-log.key" "$secrets/audit-log.key"
[ -s "$secrets/postgres-password" ] || openssl rand -hex 32 > "$secrets/postgres-password"
for service in ingest aggregate report audit; do
  if [ ! -s "$secrets/$service.pgpass" ]; then
    printf 'postgres:5432:ttp_%s:ttp_%s:%s\n' "$service" "$service" "$(openssl rand -hex 32)" > "$secrets/$service.pgpass"
  fi
done
umask 022
cp "$pki/parties.yaml" "$config/parties.yaml"
cp "$pki/audit-log.pub" "$config/audit-log.pub"
echo "dev secrets in $secrets, configuration in $config (not for production)"
