"""Put compiled policies where they take effect, without restarting anything.

Two places, each reached through an interface a cluster has too:

- Trino's rules and groups (``rules.json``, ``groups.txt``), which Trino re-reads every
  5 s (``security.refresh-period``, ``file.refresh-period``). The target is the setting
  ``SANTELAKE_POLICY_TARGET``: ``file:<folder>`` writes them atomically into a folder Trino
  reads (the local stack's ``etc``); ``configmap:<namespace>/<name>`` patches the ConfigMap
  that the chart mounts into Trino's coordinator, through the Kubernetes API with the pod's
  service account (the kubelet then refreshes the mounted files, within about a minute).
- Keycloak's groups and their members, through its admin API (``policy.keycloak``).

An expired project loses access at the next apply: the ``policy_apply`` DAG runs it daily,
and an operator runs ``santelake policy apply`` after each approved change.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from santelake.errors import ConfigError, ServiceError
from santelake.files import write_atomically
from santelake.names import REALM
from santelake.policy.build import build
from santelake.policy.compile import Compiled
from santelake.policy.keycloak import sync_groups
from santelake.render.trino import GROUP_FILE, POLICY_IDENTITY_FILE, RULES_FILE
from santelake.settings import POLICY_TARGET_CONFIGMAP, POLICY_TARGET_FILE, PlatformSettings

# Where a pod finds its service account (Kubernetes' documented in-cluster paths).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_TIMEOUT = 30.0


class RulesTarget(Protocol):
    def put(self, files: dict[str, str]) -> list[str]:
        """Make the target hold ``files`` (name -> content); returns what changed."""

    def read(self, name: str) -> str | None:
        """The content of ``name`` the target holds now (None: none)."""


class FolderTarget:
    """Files in a folder Trino reads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, name: str) -> str | None:
        path = self.folder / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def put(self, files: dict[str, str]) -> list[str]:
        if not self.folder.is_dir():
            raise ServiceError(f"{self.folder} does not exist: Trino's configuration folder is made by `santelake up`")
        return [f"wrote {self.folder / name}" for name, content in files.items()
                if write_atomically(self.folder / name, content)]


class ConfigMapTarget:
    """Keys of a ConfigMap mounted into Trino, patched through the Kubernetes API from inside the cluster."""

    def __init__(self, namespace: str, name: str, account_dir: Path = SERVICE_ACCOUNT_DIR,
                 env: dict[str, str] | None = None) -> None:
        self.namespace, self.name, self.account_dir = namespace, name, account_dir
        env = dict(os.environ) if env is None else env
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ConfigError(f"policy target configmap:{namespace}/{name} needs the Kubernetes API: "
                              "KUBERNETES_SERVICE_HOST is not set (not running in a pod?)")
        self.url = f"https://{host}:{port}/api/v1/namespaces/{namespace}/configmaps/{name}"

    def _session(self) -> Any:
        import requests

        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.account_dir / "ca.crt")
        token = (self.account_dir / "token").read_text().strip()
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def read(self, name: str) -> str | None:
        current = self._session().get(self.url, timeout=API_TIMEOUT)
        if current.status_code != 200:
            raise ServiceError(f"reading ConfigMap {self.namespace}/{self.name}: HTTP {current.status_code} "
                               f"{current.text[:300]}")
        value = (current.json().get("data") or {}).get(name)
        return value if isinstance(value, str) else None

    def put(self, files: dict[str, str]) -> list[str]:
        session = self._session()
        current = session.get(self.url, timeout=API_TIMEOUT)
        if current.status_code != 200:
            raise ServiceError(f"reading ConfigMap {self.namespace}/{self.name}: HTTP {current.status_code} "
                               f"{current.text[:300]}")
        data = current.json().get("data") or {}
        changed = {name: content for name, content in files.items() if data.get(name) != content}
        if not changed:
            return []
        patched = session.patch(self.url, data=json.dumps({"data": changed}), timeout=API_TIMEOUT,
                                headers={"Content-Type": "application/merge-patch+json"})
        if patched.status_code != 200:
            raise ServiceError(f"patching ConfigMap {self.namespace}/{self.name}: HTTP {patched.status_code} "
                               f"{patched.text[:300]}")
        return [f"patched {name} in ConfigMap {self.namespace}/{self.name}" for name in sorted(changed)]


def rules_target(setting: str) -> RulesTarget:
    """The target a ``SANTELAKE_POLICY_TARGET`` value names (checked by the settings model)."""
    kind, _, where = setting.partition(":")
    if kind == POLICY_TARGET_FILE:
        return FolderTarget(Path(where))
    if kind == POLICY_TARGET_CONFIGMAP:
        namespace, _, name = where.partition("/")
        return ConfigMapTarget(namespace, name)
    raise ConfigError(f"unknown policy target {setting!r}")


def keycloak_admin(url: str, user: str, password: str, ca_file: Path | str) -> Any:
    """Keycloak's admin API for the santelake realm, as an administrator of the master realm."""
    from keycloak import KeycloakAdmin

    return KeycloakAdmin(server_url=url + "/", username=user, password=password, realm_name=REALM,
                         user_realm_name="master", verify=str(ca_file), timeout=int(API_TIMEOUT))


# Lines of the rules' diff the audit record keeps (the whole diff, up to this).
DIFF_LINES = 5000

# The rules file's sections. Trino's file-based access control allows whatever a rules file has no
# section for (``{}`` opens every table to everyone), so rules missing one are never published.
RULE_SECTIONS = ("catalogs", "schemas", "tables", "queries", "system_information", "impersonation",
                 "authorization", "functions", "procedures", "system_session_properties",
                 "catalog_session_properties")


def check_closed(rules_json: str) -> None:
    """Refuse rules that would leave a kind of access to Trino's allow-all default."""
    try:
        rules = json.loads(rules_json)
    except ValueError as error:
        raise ConfigError(f"the compiled Trino rules are not JSON ({error}); nothing was applied") from None
    missing = [name for name in RULE_SECTIONS if not isinstance(rules, dict) or not isinstance(rules.get(name), list)]
    if missing:
        raise ConfigError(f"the compiled Trino rules have no {', '.join(missing)} section: Trino would allow "
                          "everything there; nothing was applied")


def apply(settings: PlatformSettings, compiled: Compiled, *, keycloak: bool = True) -> list[str]:
    """Trino's rules and groups (and the policy identity the audit trail records beside them) to the
    policy target, then Keycloak's groups; records the apply in the audit trail; returns what changed.

    The apply is recorded after it took effect, with who, what changed and the rules' diff. If
    the trail does not take the record, :class:`AuditUnavailableError` is raised: the policies
    are in force, and applying again records them.
    """
    import difflib

    from santelake.audit import client
    from santelake.policy.build import policy_identity

    check_closed(compiled.rules_json)
    target = rules_target(settings.policy_target)
    before = {name: target.read(name) or "" for name in (RULES_FILE, GROUP_FILE)}
    identity = policy_identity(compiled.rules_json, settings.policies_dir)
    changes = target.put({POLICY_IDENTITY_FILE: identity, RULES_FILE: compiled.rules_json,
                          GROUP_FILE: compiled.group_file})
    if keycloak:
        admin = keycloak_admin(settings.keycloak_url, settings.keycloak_admin_user,
                               settings.secret("keycloak_admin_password_file"), settings.ca_file)
        changes += sync_groups(admin, compiled)
    diffs = {name: list(difflib.unified_diff(before[name].splitlines(), content.splitlines(), f"{name} before",
                                             f"{name} after", lineterm="", n=2))[:DIFF_LINES]
             for name, content in ((RULES_FILE, compiled.rules_json), (GROUP_FILE, compiled.group_file))}
    client.record("policy.apply", settings.policy_target, {
        "identity": json.loads(identity), "changes": changes, "diff": diffs,
        "previous_rules_sha256": hashlib.sha256(before[RULES_FILE].encode()).hexdigest(),
    })
    return changes


def apply_today(settings: PlatformSettings) -> list[str]:
    """Compile the installation's policies for today and apply them (the daily DAG's task)."""
    return apply(settings, build(settings.policies_dir, settings.schemas_dir).compiled)
