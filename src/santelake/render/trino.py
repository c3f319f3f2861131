"""Trino configuration: node, JVM, server, Iceberg catalog, access control and groups.

The same functions feed the local runtime (files under ``<state>/trino/etc``) and the Helm
chart (``santelake render``), so both run one configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from santelake.render.keycloak import SSO_IDLE_SECONDS
from santelake.render.properties import to_properties

# Environment variables the Trino process must carry; the files only reference them.
ENV_SHARED_SECRET = "SANTELAKE_TRINO_SHARED_SECRET"
ENV_CATALOG_PASSWORD = "SANTELAKE_TRINO_CATALOG_PASSWORD"
ENV_S3_ACCESS_KEY = "SANTELAKE_TRINO_S3_ACCESS_KEY"
ENV_S3_SECRET_KEY = "SANTELAKE_TRINO_S3_SECRET_KEY"
ENV_AUDIT_TOKEN = "SANTELAKE_TRINO_AUDIT_TOKEN"
ENV_AUDIT_READER_PASSWORD = "SANTELAKE_TRINO_AUDIT_READER_PASSWORD"
# Researchers' browser login (OAuth 2.0): the Keycloak client's secret, and the key that encrypts the
# token Trino hands the client (base64 of 32 random bytes; the same across restarts, so a restart
# logs nobody out).
ENV_OAUTH2_CLIENT_SECRET = "SANTELAKE_TRINO_OAUTH2_CLIENT_SECRET"
ENV_OAUTH2_TOKEN_KEY = "SANTELAKE_TRINO_OAUTH2_TOKEN_KEY"
# Their names in the local secret store (the chart's Secret: secrets.trinoOAuth2).
OAUTH2_CLIENT_SECRET_NAME = "trino-oauth2-client-secret"
OAUTH2_TOKEN_KEY_NAME = "trino-oauth2-token-key"
# How long a browser login lasts without activity: Trino's token holds Keycloak's refresh token,
# which lapses after the realm's idle timeout, so no longer than that.
OAUTH2_SESSION = f"{SSO_IDLE_SECONDS}s"

# Only these plugins are unpacked: the lake's catalog, the file group provider, the audit sink
# (http-event-listener) and the audit trail's catalog (postgresql, which needs the Geometry type
# of geospatial to start).
PLUGINS = ("iceberg", "password-authenticators", "http-event-listener", "postgresql", "geospatial")

CATALOG_FILE = "catalog/iceberg.properties"
AUDIT_CATALOG = "audit"
AUDIT_CATALOG_FILE = f"catalog/{AUDIT_CATALOG}.properties"
AUDIT_LISTENER_FILE = "audit-listener.properties"
# Beside the rules: their SHA-256 and the policies' revision, which the audit receiver adds to each
# query's record (santelake.policy.build.policy_identity).
POLICY_IDENTITY_FILE = "policy-identity.json"
# Trino keeps an event it could not deliver in memory and retries it, 1 s then doubling to at most
# a minute between tries: 30 tries ride out about 25 minutes of a receiver's absence. After that,
# or if the coordinator stops meanwhile, the event is lost, and `santelake audit verify` reports the
# gap it leaves (docs/compliance.md).
AUDIT_RETRIES = 30
RULES_FILE = "rules.json"
GROUP_FILE = "groups.txt"


@dataclass(frozen=True)
class TrinoParams:
    etc_dir: str
    node_id: str
    environment: str
    bind_ip: str
    internal_address: str
    http_port: int
    https_port: int
    keystore_path: str
    truststore_path: str
    jwks_ca_path: str
    issuer: str
    audience: str
    catalog_name: str
    catalog_jdbc_url: str
    catalog_user: str
    warehouse: str
    s3_endpoint: str
    heap: str = "2G"
    # Trino data sizes (or ${ENV:...} references): one query's memory across workers and on one node.
    query_max_memory: str = "1GB"
    query_max_memory_per_node: str = "512MB"
    log_path: str = ""
    coordinator: bool = True
    include_coordinator: bool = True
    discovery_uri: str = ""
    # The audit receiver's events URL (the coordinator's listener) and the trail's JDBC URL (read as
    # audit_reader by every node that runs tasks); empty: no audit (benchmarks that measure without it).
    audit_uri: str = ""
    audit_jdbc_url: str = ""
    # The CA (PEM) the listener verifies the receiver with; empty: jwks_ca_path (one CA locally).
    audit_ca_path: str = ""


def node_properties(p: TrinoParams, data_dir: str) -> str:
    return to_properties({
        "node.environment": p.environment,
        "node.id": p.node_id,
        "node.data-dir": data_dir,
        "node.bind-ip": p.bind_ip,
        "node.internal-address": p.internal_address,
    })


def heap_option(heap: str) -> str:
    """``2G`` is a fixed heap; ``75%`` a share of the memory the container is given (Kubernetes)."""
    if heap.endswith("%"):
        return f"-XX:MaxRAMPercentage={heap[:-1]}"
    return f"-Xmx{heap}"


def jvm_config(p: TrinoParams) -> str:
    options = [
        "-server",
        heap_option(p.heap),
        "-XX:InitialRAMPercentage=10",
        "-XX:+UseG1GC",
        "-XX:G1HeapRegionSize=32M",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:+HeapDumpOnOutOfMemoryError",
        "-XX:-OmitStackTraceInFastThrow",
        "-XX:ReservedCodeCacheSize=256M",
        "-XX:PerMethodRecompilationCutoff=10000",
        "-XX:PerBytecodeRecompilationCutoff=10000",
        "-Djdk.attach.allowAttachSelf=true",
        "-Djdk.nio.maxCachedBufferSize=2000000",
        "-Dfile.encoding=UTF-8",
        # The S3 client verifies the object store against the platform CA only; the store holds
        # public certificates and no MAC, so it needs no password.
        f"-Djavax.net.ssl.trustStore={p.truststore_path}",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
    ]
    return "\n".join(options) + "\n"


def config_properties(p: TrinoParams) -> str:
    discovery = p.discovery_uri or f"http://{p.internal_address}:{p.http_port}"
    values: dict[str, str | int | bool] = {
        "coordinator": p.coordinator,
        "http-server.http.port": p.http_port,
        "discovery.uri": discovery,
        "internal-communication.shared-secret": f"${{ENV:{ENV_SHARED_SECRET}}}",
        "query.max-memory": p.query_max_memory,
        "query.max-memory-per-node": p.query_max_memory_per_node,
    }
    if p.log_path:
        values["log.path"] = p.log_path
    if p.coordinator:
        values |= {
            "node-scheduler.include-coordinator": p.include_coordinator,
            "http-server.https.enabled": True,
            "http-server.https.port": p.https_port,
            "http-server.https.keystore.path": p.keystore_path,
            # A browser login first (the CLI's --external-authentication, JDBC's externalAuthentication,
            # Python's OAuth2Authentication), then a token the client already holds.
            "http-server.authentication.type": "oauth2,jwt",
            **oauth2_properties(p),
            "http-server.authentication.jwt.key-file": _oidc(p, "certs"),
            "http-server.authentication.jwt.required-issuer": p.issuer,
            "http-server.authentication.jwt.required-audience": p.audience,
            "http-server.authentication.jwt.principal-field": "preferred_username",
            "jwk.http-client.trust-store-path": p.jwks_ca_path,
            "web-ui.enabled": False,
            "access-control.config-files": f"{p.etc_dir}/access-control.properties",
            # SELECT * means the columns the user may read: the others are left out, not refused.
            "hide-inaccessible-columns": True,
        }
        if p.audit_uri:
            values["event-listener.config-files"] = f"{p.etc_dir}/{AUDIT_LISTENER_FILE}"
            # The output stage's JSON in each completed event, at most this: the least Trino takes. The
            # trail does not keep it, and sending it (often more than 100 KB) slowed queries down.
            values["event.max-output-stage-size"] = "1kB"
    return to_properties(values)


def new_token_key() -> str:
    """A key for Trino's issued tokens: base64 of 32 random bytes (Trino wants at least 256 bits)."""
    import base64
    import secrets

    return base64.b64encode(secrets.token_bytes(32)).decode()


def _oidc(p: TrinoParams, endpoint: str) -> str:
    """One of the realm's OpenID Connect endpoints (``auth``, ``token``, ``certs``)."""
    return f"{p.issuer}/protocol/openid-connect/{endpoint}"


def oauth2_properties(p: TrinoParams) -> dict[str, str | bool]:
    """Trino's OAuth 2.0 login against the realm's ``trino`` client (authorization code flow).

    The endpoints are written out rather than discovered: discovery happens once, at start, and
    would make the coordinator depend on Keycloak being up first. Tokens are checked locally
    against the realm's keys (no userinfo call per query). The principal is the username.
    """
    prefix = "http-server.authentication.oauth2"
    return {
        f"{prefix}.issuer": p.issuer,
        f"{prefix}.oidc.discovery": False,
        f"{prefix}.auth-url": _oidc(p, "auth"),
        f"{prefix}.token-url": _oidc(p, "token"),
        f"{prefix}.jwks-url": _oidc(p, "certs"),
        f"{prefix}.client-id": p.audience,
        f"{prefix}.client-secret": f"${{ENV:{ENV_OAUTH2_CLIENT_SECRET}}}",
        f"{prefix}.scopes": "openid",
        f"{prefix}.principal-field": "preferred_username",
        # Trino accepts the realm's own access tokens here too, and by default a minute after they
        # expired: none, as the JWT authenticator (the clocks are the same machine's or cluster's).
        f"{prefix}.max-clock-skew": "0s",
        f"{prefix}.refresh-tokens": True,
        f"{prefix}.refresh-tokens.issued-token.timeout": OAUTH2_SESSION,
        f"{prefix}.refresh-tokens.secret-key": f"${{ENV:{ENV_OAUTH2_TOKEN_KEY}}}",
        # Keycloak's keys and token endpoint, reached with the CA of Keycloak's certificate (PEM).
        "oauth2-jwk.http-client.trust-store-path": p.jwks_ca_path,
    }


def log_properties() -> str:
    return to_properties({"io.trino": "INFO"})


def access_control_properties(p: TrinoParams) -> str:
    return to_properties({
        "access-control.name": "file",
        "security.config-file": f"{p.etc_dir}/{RULES_FILE}",
        "security.refresh-period": "5s",
    })


def group_provider_properties(p: TrinoParams) -> str:
    return to_properties({
        "group-provider.name": "file",
        "file.group-file": f"{p.etc_dir}/{GROUP_FILE}",
        "file.refresh-period": "5s",
    })


def iceberg_catalog(p: TrinoParams) -> str:
    return to_properties({
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.catalog-name": p.catalog_name,
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": p.catalog_jdbc_url,
        "iceberg.jdbc-catalog.connection-user": p.catalog_user,
        "iceberg.jdbc-catalog.connection-password": f"${{ENV:{ENV_CATALOG_PASSWORD}}}",
        "iceberg.jdbc-catalog.default-warehouse-dir": p.warehouse,
        "iceberg.file-format": "PARQUET",
        "fs.native-s3.enabled": True,
        "s3.endpoint": p.s3_endpoint,
        "s3.region": "us-east-1",
        "s3.path-style-access": True,
        "s3.aws-access-key": f"${{ENV:{ENV_S3_ACCESS_KEY}}}",
        "s3.aws-secret-key": f"${{ENV:{ENV_S3_SECRET_KEY}}}",
        # Trino keeps the object store's small files (metadata, manifests, the data files of a small
        # lake) in memory, keyed by path (Iceberg files are never rewritten in place): its default is
        # 5% of the heap and files up to 8MB. Figures: docs/benchmarks.md, "Researcher queries".
        "fs.memory-cache.max-size": "256MB",
        "fs.memory-cache.max-content-length": "15MB",
    })


def audit_listener(p: TrinoParams) -> str:
    """Trino's http event listener: every query's created and completed event, to the receiver."""
    return to_properties({
        "event-listener.name": "http",
        "http-event-listener.log-created": True,
        "http-event-listener.log-completed": True,
        "http-event-listener.log-split": False,
        "http-event-listener.connect-ingest-uri": p.audit_uri,
        "http-event-listener.connect-http-headers": f"Authorization: Bearer ${{ENV:{ENV_AUDIT_TOKEN}}}",
        "http-event-listener.connect-retry-count": AUDIT_RETRIES,
        "http-event-listener.connect-retry-delay": "1s",
        "http-event-listener.connect-backoff-base": 2,
        "http-event-listener.connect-max-delay": "1m",
        "http-event-listener.http-client.trust-store-path": p.audit_ca_path or p.jwks_ca_path,  # PEM
        "http-event-listener.http-client.request-timeout": "30s",
    })


def audit_catalog(p: TrinoParams) -> str:
    """The audit trail, read-only for Trino: the database role can SELECT and nothing else."""
    return to_properties({
        "connector.name": "postgresql",
        "connection-url": p.audit_jdbc_url,
        "connection-user": "audit_reader",
        "connection-password": f"${{ENV:{ENV_AUDIT_READER_PASSWORD}}}",
    })


def etc_files(p: TrinoParams, data_dir: str, rules_json: str, groups: str) -> dict[str, str]:
    """Every file of Trino's etc directory, by relative path."""
    files = {
        "node.properties": node_properties(p, data_dir),
        "jvm.config": jvm_config(p),
        "config.properties": config_properties(p),
        "log.properties": log_properties(),
        CATALOG_FILE: iceberg_catalog(p),
    }
    if p.coordinator:
        files |= {
            "access-control.properties": access_control_properties(p),
            "group-provider.properties": group_provider_properties(p),
            RULES_FILE: rules_json,
            GROUP_FILE: groups,
        }
        if p.audit_uri:
            files[AUDIT_LISTENER_FILE] = audit_listener(p)
    # Every node that runs tasks reads the trail's catalog (the chart's workers, the local single node).
    if p.audit_jdbc_url:
        files[AUDIT_CATALOG_FILE] = audit_catalog(p)
    return files
