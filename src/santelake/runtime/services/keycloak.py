"""Keycloak: identity for researchers and staff, realm ``santelake``.

Unpacked from the verified Maven Central distribution, built once for PostgreSQL, run in
production mode on HTTPS (loopback only, local cache, no clustering). The realm is imported
at start, its Airflow client's secret and Airflow's address resolved from Keycloak's
environment; dev users are created through the admin API with generated passwords.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

from santelake.access.enforce import keycloak_admin
from santelake.errors import ServiceError
from santelake.names import AIRFLOW_CLIENT, REALM, TRINO_AUDIENCE
from santelake.policy.compile import Compiled
from santelake.policy.keycloak import sync_groups
from santelake.render.airflow import CLIENT_SECRET_NAME
from santelake.render.keycloak import (
    AIRFLOW_SECRET_ENV,
    AIRFLOW_URL_ENV,
    AUDIT_SECRET_ENV,
    BRUTE_FORCE,
    RUNTIME_ENV,
    RUNTIME_OPTIONS,
    SESSIONS,
    TRINO_SECRET_ENV,
    TRINO_URL_ENV,
    airflow_client,
    audience_mapper,
    audit_client,
    realm_json,
    trino_client,
)
from santelake.render.trino import OAUTH2_CLIENT_SECRET_NAME
from santelake.runtime import devusers
from santelake.runtime.artifacts import KEYCLOAK, fetch_maven
from santelake.runtime.java import find_java_home
from santelake.runtime.layout import Layout
from santelake.runtime.process import ProcessSpec, run_checked
from santelake.runtime.services.audit import KEYCLOAK_SECRET as AUDIT_KEYCLOAK_SECRET
from santelake.runtime.services.base import Health, Service
from santelake.runtime.services.postgres import role_password_key

ADMIN_USER = "santelake-admin"
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--metrics-enabled=false")


def _with_audience(client: dict[str, Any]) -> dict[str, Any]:
    """An existing client's representation, with the mapper that names Trino in its tokens' ``aud``
    added if it has none (a client made before the realm file gave it one)."""
    mappers = client.get("protocolMappers") or []
    if not any(m.get("protocolMapper") == "oidc-audience-mapper" for m in mappers):
        client["protocolMappers"] = [*mappers, audience_mapper(TRINO_AUDIENCE)]
    return client


class Keycloak(Service):
    name = "keycloak"
    port_keys = ("keycloak", "keycloak-management")

    def __init__(self, layout: Layout, policy: Compiled | None = None) -> None:
        super().__init__(layout)
        # The compiled policies: the realm's groups and their members (``prepare`` and ``after_start``).
        self.policy = policy

    def _compiled(self) -> Compiled:
        if self.policy is None:
            raise ServiceError("Keycloak's realm needs the compiled policies: start it with `santelake up`")
        return self.policy

    @property
    def home(self) -> Path:
        return self.layout.opt / f"keycloak-{KEYCLOAK.version}"

    def _env(self) -> dict[str, str]:
        s = self.layout.settings
        tls = self.layout.tls
        java_home = find_java_home(s.java_home)
        return {
            "PATH": f"{java_home}/bin:" + os.environ.get("PATH", "/usr/bin:/bin"),
            "JAVA_HOME": str(java_home),
            "JAVA_OPTS_KC_HEAP": f"-Xms128m -Xmx{s.keycloak_heap}",
            "KC_DB": "postgres",
            "KC_DB_URL": (f"jdbc:postgresql://{s.hostname}:{s.postgres_port}/keycloak"
                          f"?sslmode=verify-full&sslrootcert={tls.ca_cert}"),
            "KC_DB_USERNAME": "keycloak",
            "KC_DB_PASSWORD": self.layout.secrets.get(role_password_key("keycloak")),
            "KC_HOSTNAME": self.url,
            "KC_HTTP_ENABLED": "false",
            "KC_HTTP_HOST": s.bind_host,
            "KC_HTTPS_PORT": str(s.keycloak_port),
            "KC_HTTPS_CERTIFICATE_FILE": str(tls.server_cert),
            "KC_HTTPS_CERTIFICATE_KEY_FILE": str(tls.server_key),
            "KC_HTTP_MANAGEMENT_PORT": str(s.keycloak_management_port),
            "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.layout.secrets.get("keycloak-admin-password"),
            "KC_LOG": "console",
            # One node: no JGroups cluster, which would listen on every interface.
            "KC_CACHE": "local",
            **RUNTIME_ENV,
            # Read by the realm import (placeholders in the realm file).
            AIRFLOW_SECRET_ENV: self.layout.secrets.get(CLIENT_SECRET_NAME),
            AIRFLOW_URL_ENV: self.layout.url("airflow"),
            TRINO_SECRET_ENV: self.layout.secrets.get(OAUTH2_CLIENT_SECRET_NAME),
            TRINO_URL_ENV: self.layout.url("trino"),
            AUDIT_SECRET_ENV: self.layout.secrets.get(AUDIT_KEYCLOAK_SECRET),
        }

    def prepare(self) -> None:
        if not (self.home / "bin" / "kc.sh").exists():
            archive = fetch_maven(KEYCLOAK, self.layout.settings.cache_dir)
            self.layout.opt.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(self.layout.opt)
            for script in (self.home / "bin").glob("*.sh"):
                script.chmod(0o755)
        import_dir = self.home / "data" / "import"
        import_dir.mkdir(parents=True, exist_ok=True)
        (import_dir / f"{REALM}-realm.json").write_text(
            realm_json(REALM, TRINO_AUDIENCE, self._compiled().groups, airflow_admins=self._compiled().airflow_admins,
                       allow_password_grant=True)
        )
        marker = self.home / ".santelake-build"
        wanted = hashlib.sha256(" ".join(BUILD_OPTIONS).encode()).hexdigest()
        if not marker.exists() or marker.read_text().strip() != wanted:
            run_checked([str(self.home / "bin" / "kc.sh"), "build", *BUILD_OPTIONS], "keycloak build",
                        env=self._env(), cwd=self.home)
            marker.write_text(wanted + "\n")

    def processes(self) -> list[ProcessSpec]:
        command = [str(self.home / "bin" / "kc.sh"), "start", "--optimized", "--import-realm", *RUNTIME_OPTIONS]
        return [self.spec(command, self._env(), cwd=self.home)]

    def health(self) -> Health:
        s = self.layout.settings
        status, body = self.https_get(f"https://{s.hostname}:{s.keycloak_management_port}/health/ready")
        detail = f"HTTP {status}" if status else body.decode(errors="replace")
        return Health(status == 200, detail)

    def admin(self) -> Any:
        return keycloak_admin(self.url, ADMIN_USER, self.layout.secrets.get("keycloak-admin-password"),
                              self.layout.tls.ca_cert)

    def after_start(self) -> None:
        admin = self.admin()
        for user, password in devusers.passwords(self.layout).items():
            user_id = admin.get_user_id(user)
            if user_id is None:
                user_id = admin.create_user({
                    "username": user, "enabled": True, "emailVerified": True,
                    "firstName": user.title(), "lastName": "Dev", "email": f"{user}@santelake.invalid",
                })
            admin.set_user_password(user_id, password, temporary=False)
        # Groups and memberships come from policies/, like Trino's group file.
        sync_groups(admin, self._compiled())
        # The realm is imported once; settings it gained since are brought to an existing one here.
        admin.update_realm(REALM, BRUTE_FORCE | SESSIONS)
        self._ensure_airflow_client(admin)
        self._ensure_trino_client(admin)
        self._ensure_audit(admin)

    def _ensure_audit(self, admin: Any) -> None:
        """Keycloak keeps the realm's logins and admin changes, and the audit receiver's own client
        (service account: view events and users, nothing else) may read them (santelake.audit.keycloak)."""
        from santelake.audit import keycloak as audit

        admin.update_realm(REALM, audit.REALM_EVENT_SETTINGS)
        secret = self.layout.secrets.get(AUDIT_KEYCLOAK_SECRET)
        client = audit_client(TRINO_AUDIENCE, secret=secret)
        internal_id = admin.get_client_id(audit.AUDIT_CLIENT)
        if internal_id is None:
            admin.create_client(client)
            internal_id = admin.get_client_id(audit.AUDIT_CLIENT)
        else:
            admin.update_client(internal_id, _with_audience(admin.get_client(internal_id)) | {"secret": secret})
        account = admin.get_client_service_account_user(internal_id)
        management = admin.get_client_id("realm-management")
        roles = [r for r in admin.get_client_roles(management) if r["name"] in audit.AUDIT_CLIENT_ROLES]
        admin.assign_client_role(account["id"], management, roles)

    def _ensure_trino_client(self, admin: Any) -> None:
        """A realm imported before researchers logged in to Trino through their browser had ``trino``
        as a bearer-only client: it becomes the realm file's client, with the current secret and address."""
        client = trino_client(TRINO_AUDIENCE, secret=self.layout.secrets.get(OAUTH2_CLIENT_SECRET_NAME),
                              trino_url=self.layout.url("trino"))
        internal_id = admin.get_client_id(TRINO_AUDIENCE)
        if internal_id is None:
            admin.create_client(client)
            return
        admin.update_client(internal_id, _with_audience(admin.get_client(internal_id)) | {
            key: value for key, value in client.items() if key != "protocolMappers"})

    def _ensure_airflow_client(self, admin: Any) -> None:
        """Keycloak imports the realm file only into a realm that does not exist yet: a realm made
        before operators logged in to Airflow through Keycloak gets the client here, as the realm
        file has it; an existing client gets the current secret and Airflow address."""
        client = airflow_client(self._compiled().airflow_admins, secret=self.layout.secrets.get(CLIENT_SECRET_NAME),
                                airflow_url=self.layout.url("airflow"))
        internal_id = admin.get_client_id(AIRFLOW_CLIENT)
        if internal_id is None:
            # Created with its authorisation settings (a partial import would drop them).
            admin.create_client(client)
        else:
            # The whole representation back: a PUT without authorizationServicesEnabled drops the settings.
            current = admin.get_client(internal_id)
            current["attributes"] = current.get("attributes", {}) | client["attributes"]
            admin.update_client(internal_id, current | {key: client[key] for key in ("secret", "redirectUris")})
