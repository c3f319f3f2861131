"""Trino: the SQL engine researchers use, one coordinator that also works, locally.

Unpacked from the verified Maven Central tarball with only the plugins santelake uses, on
Java 24+, HTTPS with JWT from Keycloak, file-based access control that denies by default.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from santelake.audit.receiver import TRINO_PATH
from santelake.audit.store import DATABASE as AUDIT_DATABASE
from santelake.audit.store import READER as AUDIT_READER
from santelake.errors import ServiceError
from santelake.names import CATALOG_NAME, CATALOG_ROLE, TRINO_AUDIENCE, WAREHOUSE_BUCKET
from santelake.policy.compile import Compiled
from santelake.render import trino as render
from santelake.runtime.artifacts import TRINO_SERVER, fetch_maven
from santelake.runtime.java import find_java_home
from santelake.runtime.layout import Layout
from santelake.runtime.process import ProcessSpec, run_checked
from santelake.runtime.services.audit import TOKEN_SECRET as AUDIT_TOKEN_SECRET
from santelake.runtime.services.base import Health, Service
from santelake.runtime.services.minio import Minio
from santelake.runtime.services.postgres import role_password_key


def unpack_trino(archive: Path, target_parent: Path, plugins: tuple[str, ...]) -> Path:
    """Unpack the server tarball, then remove every plugin not in ``plugins``.

    The tarball hard-links jars shared between plugins (iceberg's to delta-lake's), so a
    selective extraction breaks the links; GNU tar unpacks it whole, several times faster
    than Python's tarfile on this 800 MB archive.
    """
    root = f"trino-server-{TRINO_SERVER.version}"
    target = target_parent / root
    partial = target_parent / (root + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run_checked(["tar", "-xzf", str(archive), "-C", str(partial), "--no-same-owner"], "unpacking Trino")
    for plugin in (partial / root / "plugin").iterdir():
        if plugin.name not in plugins:
            shutil.rmtree(plugin)
    (partial / root).rename(target)
    partial.rmdir()
    return target


class Trino(Service):
    name = "trino"
    port_keys = ("trino", "trino-internal")

    def __init__(self, layout: Layout, policy: Compiled | None = None) -> None:
        super().__init__(layout)
        # The compiled policies its rules and groups files start with (``prepare`` needs them).
        self.policy = policy

    @property
    def home(self) -> Path:
        return self.layout.opt / f"trino-server-{TRINO_SERVER.version}"

    @property
    def directory(self) -> Path:
        return self.layout.service_dir("trino")

    @property
    def etc(self) -> Path:
        return self.directory / "etc"

    @property
    def truststore(self) -> Path:
        return self.directory / "truststore.p12"

    def params(self) -> render.TrinoParams:
        s = self.layout.settings
        tls = self.layout.tls
        return render.TrinoParams(
            etc_dir=str(self.etc), node_id="santelake-local-1", environment="santelake",
            bind_ip=s.bind_host, internal_address=s.bind_host,
            http_port=s.trino_internal_port, https_port=s.trino_port,
            keystore_path=str(tls.server_bundle), truststore_path=str(self.truststore),
            jwks_ca_path=str(tls.ca_cert), issuer=self.layout.keycloak_issuer, audience=TRINO_AUDIENCE,
            catalog_name=CATALOG_NAME, catalog_jdbc_url=self.layout.catalog_jdbc_url, catalog_user=CATALOG_ROLE,
            warehouse=f"s3://{WAREHOUSE_BUCKET}/", s3_endpoint=self.layout.url("minio"), heap=s.trino_heap,
            log_path=str(self.server_log), audit_uri=f"{self.layout.url('audit')}{TRINO_PATH}",
            audit_jdbc_url=(f"jdbc:postgresql://{s.hostname}:{s.postgres_port}/{AUDIT_DATABASE}"
                            f"?sslmode=verify-full&sslrootcert={tls.ca_cert}"),
        )

    @property
    def server_log(self) -> Path:
        return self.layout.log("trino-server")

    def _java_home(self) -> Path:
        return find_java_home(self.layout.settings.java_home)

    def clear_stale_launcher_pid(self) -> None:
        """Remove the launcher's own pid file when its process is gone. A killed Trino leaves it; if the
        pid is a zombie nobody reaps, the launcher would refuse to start ("already running")."""
        from santelake.runtime.process import pid_alive

        launcher_pid = self.directory / "data" / "var" / "run" / "launcher.pid"
        try:
            pid = int(launcher_pid.read_text().strip())
        except (OSError, ValueError):
            return
        if not pid_alive(pid):
            launcher_pid.unlink(missing_ok=True)

    def prepare(self) -> None:
        self.clear_stale_launcher_pid()
        if not (self.home / "bin" / "launcher").exists() or any(
                not (self.home / "plugin" / plugin).is_dir() for plugin in render.PLUGINS):
            # Not unpacked yet, or unpacked by a santelake that kept fewer plugins.
            shutil.rmtree(self.home, ignore_errors=True)
            archive = fetch_maven(TRINO_SERVER, self.layout.settings.cache_dir)
            self.layout.opt.mkdir(parents=True, exist_ok=True)
            unpack_trino(archive, self.layout.opt, render.PLUGINS)
        if not self.truststore.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            keytool = self._java_home() / "bin" / "keytool"
            run_checked([
                str(keytool), "-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE",
                "-J-Dkeystore.pkcs12.macAlgorithm=NONE", "-importcert", "-noprompt", "-alias", "santelake-ca",
                "-file", str(self.layout.tls.ca_cert), "-keystore", str(self.truststore), "-storetype", "PKCS12",
                "-storepass", secrets.token_urlsafe(16),
            ], "creating Trino's truststore")
        if self.policy is None:
            raise ServiceError("Trino's configuration needs the compiled policies: start it with `santelake up`")
        self.write_etc(self.policy)

    def write_etc(self, compiled: Compiled) -> None:
        """Write every etc file; Trino re-reads rules and groups within seconds."""
        from santelake.policy.build import policy_identity

        files = render.etc_files(
            self.params(), str(self.directory / "data"), compiled.rules_json, compiled.group_file,
        )
        # Before the rules, so the receiver never pairs new rules with an old revision for long.
        files = {render.POLICY_IDENTITY_FILE: policy_identity(compiled.rules_json)} | files
        for relative, content in files.items():
            path = self.etc / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(content)
            tmp.replace(path)

    def processes(self) -> list[ProcessSpec]:
        minio = Minio(self.layout)
        access, secret = minio.credentials("trino")
        java_home = self._java_home()
        env = {
            "PATH": f"{java_home}/bin:" + os.environ.get("PATH", "/usr/bin:/bin"),
            "JAVA_HOME": str(java_home),
            render.ENV_SHARED_SECRET: self.layout.secrets.get("trino-shared-secret", length=48),
            render.ENV_CATALOG_PASSWORD: self.layout.secrets.get(role_password_key(CATALOG_ROLE)),
            render.ENV_S3_ACCESS_KEY: access,
            render.ENV_S3_SECRET_KEY: secret,
            render.ENV_AUDIT_TOKEN: self.layout.secrets.get(AUDIT_TOKEN_SECRET, length=48),
            render.ENV_AUDIT_READER_PASSWORD: self.layout.secrets.get(role_password_key(AUDIT_READER)),
            render.ENV_OAUTH2_CLIENT_SECRET: self.layout.secrets.get(render.OAUTH2_CLIENT_SECRET_NAME),
            render.ENV_OAUTH2_TOKEN_KEY: self.layout.secrets.get(render.OAUTH2_TOKEN_KEY_NAME,
                                                                 generate=render.new_token_key),
        }
        command = [str(self.home / "bin" / "launcher"), "run", f"--etc-dir={self.etc}",
                   f"--data-dir={self.directory / 'data'}"]
        return [self.spec(command, env, cwd=self.home, extra_log=self.server_log)]

    def health(self) -> Health:
        status, body = self.https_get(f"{self.url}/v1/info")
        if status != 200:
            return Health(False, f"HTTP {status}" if status else body.decode(errors="replace"))
        info = json.loads(body)
        return Health(not info.get("starting", True), "starting" if info.get("starting") else "ready")
