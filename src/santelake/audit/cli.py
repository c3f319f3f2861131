"""``santelake audit``: run the receiver, prove the trail."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from santelake.audit.config import AUDIT_BUCKET, ENV, RETENTION_DAYS, AuditSettings


def settings_for(args: argparse.Namespace, reader: bool) -> AuditSettings:
    """The environment's settings in a pod or when they are set; else the local installation's
    (``reader``: as the read-only role that compliance reads with)."""
    from santelake.cli import IN_A_POD, layout_from

    if IN_A_POD in os.environ or ENV["db_host"] in os.environ:
        return AuditSettings.from_environment()
    from santelake.runtime.services.audit import local_settings

    return local_settings(layout_from(args), reader=reader)


def cmd_serve(args: argparse.Namespace) -> int:
    from santelake.audit.anchors import S3Anchors
    from santelake.audit.receiver import PolicyIdentity, Receiver, serve
    from santelake.audit.store import AuditStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = AuditSettings.from_environment()
    if not (settings.token and settings.tls_cert and settings.tls_key):
        from santelake.errors import ConfigError

        raise ConfigError("the receiver needs SANTELAKE_AUDIT_TOKEN, SANTELAKE_AUDIT_TLS_CERT and "
                          "SANTELAKE_AUDIT_TLS_KEY")
    keycloak = None
    if settings.keycloak_url and settings.keycloak_secret:
        from santelake.audit.keycloak import KeycloakEvents
        from santelake.names import REALM

        keycloak = KeycloakEvents(settings.keycloak_url, REALM, settings.keycloak_secret, str(settings.ca_file))
    else:
        logging.warning("no SANTELAKE_AUDIT_KEYCLOAK_URL and SANTELAKE_AUDIT_KEYCLOAK_SECRET: Keycloak's logins "
                        "and admin changes are NOT copied into the trail")
    canary = None
    if keycloak is not None and settings.trino_url:
        from santelake.audit.canary import TrinoCanary

        canary = TrinoCanary(settings.trino_url, keycloak.token, str(settings.ca_file))
    else:
        logging.warning("no SANTELAKE_AUDIT_TRINO_URL (or no Keycloak client): the audit listener is not "
                        "checked by a canary query; switching it off would go unrecorded")
    receiver = Receiver(AuditStore(settings.connect), S3Anchors(settings.s3(), AUDIT_BUCKET, settings.db_name),
                        settings.anchor_interval, keycloak=keycloak, canary=canary,
                        canary_interval=settings.canary_interval)
    server = serve(receiver, settings.bind, settings.port, settings.tls_cert, settings.tls_key, settings.token,
                   PolicyIdentity(settings.rules_file, settings.identity_file))
    receiver.start()

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.info("audit receiver on https://%s:%d", settings.bind, settings.port)
    server.serve_forever()
    # Queued events are sealed before the anchor and the exit.
    receiver.stop()
    receiver.anchor()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from santelake.audit.anchors import S3Anchors
    from santelake.audit.chain import verify
    from santelake.audit.gaps import GapFinder
    from santelake.audit.store import AuditStore

    settings = settings_for(args, reader=True)
    anchors = list(S3Anchors(settings.s3(), AUDIT_BUCKET, settings.db_name))
    finder = GapFinder()
    verdict = verify(finder.watch(AuditStore(settings.connect).records()), anchors)
    if not verdict.ok:
        print(f"audit trail NOT proven ({verdict.records} records read before the first problem):", file=sys.stderr)
        for problem in verdict.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    span = f"records {verdict.first_seq} to {verdict.last_seq}" if verdict.records else "no records"
    print(f"audit trail proven: {verdict.records} records ({span}) linked, {len(anchors)} anchors reached; "
          f"head {verdict.head_hash}")
    gaps = finder.gaps()
    if gaps:
        print(f"but {len(gaps)} gap{'s' if len(gaps) > 1 else ''} in what Trino sent (events lost before they "
              f"reached the trail):", file=sys.stderr)
        for gap in gaps:
            print(f"  {gap}", file=sys.stderr)
        return 2
    return 0


def _moment(text: str) -> dt.datetime:
    """A date (midnight UTC) or an ISO timestamp (UTC unless it says otherwise)."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: not a date (2026-12-01) or a timestamp") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def cmd_report(args: argparse.Namespace) -> int:
    from santelake.audit.report import Scope, build, read_queries, render_html, render_text
    from santelake.errors import ConfigError
    from santelake.locations import policies_dir
    from santelake.policy.loader import load_policies

    policies = load_policies(policies_dir(args.policies))
    project = None
    if args.project:
        project = next((p for p in policies.projects if p.id == args.project), None)
        if project is None:
            raise ConfigError(f"no project {args.project!r} in {policies_dir(args.policies)}; known: "
                              f"{', '.join(sorted(p.id for p in policies.projects))}")
    scope = Scope(project, args.user, args.since, args.until)
    conn = settings_for(args, reader=True).connect()
    try:
        report = build(read_queries(conn, args.since, args.until), scope, policies)
    finally:
        conn.close()
    if args.html:
        from santelake.files import write_atomically

        write_atomically(Path(args.html), render_html(report))
        print(f"wrote {args.html}")
    else:
        print(render_text(report), end="")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from santelake.audit.client import actor
    from santelake.audit.store import AuditStore, purge
    from santelake.cli import IN_A_POD
    from santelake.errors import ConfigError

    if args.before is not None:
        before, retention = args.before, f"records before {args.before.isoformat()}"
    else:
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.retention_days)
        retention = f"{args.retention_days} days"
    if ENV["db_host"] in os.environ:
        # The chart's retention CronJob: the writer's settings and the database administrator's, from the pod.
        settings = AuditSettings.from_environment()
        superuser = _administrator(settings)
    elif IN_A_POD in os.environ:
        raise ConfigError("`santelake audit purge` runs where the trail's database administrator is at hand: "
                          "the chart's audit retention CronJob, or the local installation")
    else:
        from santelake.cli import layout_from
        from santelake.runtime.services.audit import local_settings
        from santelake.runtime.services.postgres import Postgres

        layout = layout_from(args)
        settings = local_settings(layout)

        def superuser() -> Any:
            return Postgres(layout).connect(settings.db_name)

    writer = AuditStore(settings.connect)
    try:
        done = purge(writer, superuser, before, actor(), retention)
    finally:
        writer.close()
    if done is None:
        print(f"no record older than {before.isoformat()}: nothing purged")
    else:
        print(f"purged {done.records} records (up to record {done.through_seq}); purge record {done.purge_seq} "
              f"vouches for them")
    return 0


def _administrator(settings: AuditSettings) -> Any:
    """A connection maker to the trail's database as its administrator (the bootstrap Job's role: its name
    in SANTELAKE_AUDIT_DB_ADMIN_USER, its password as the bootstrap Job reads it), TLS verified."""
    from santelake.errors import ConfigError
    from santelake.render.bootstrap import ENV_AUDIT_ADMIN_USER, SECRET_AUDIT_ADMIN_PASSWORD
    from santelake.runtime.secrets import env_name, provided

    user, password = os.environ.get(ENV_AUDIT_ADMIN_USER), provided(SECRET_AUDIT_ADMIN_PASSWORD)
    if not user or password is None:
        raise ConfigError(f"a purge deletes as the trail's database administrator: set {ENV_AUDIT_ADMIN_USER} "
                          f"and {env_name(SECRET_AUDIT_ADMIN_PASSWORD)}_FILE")

    from santelake.settings import postgres_connect

    return lambda: postgres_connect(settings.db_host, settings.db_port, user, password, settings.db_name,
                                    settings.ca_file, application_name="santelake-audit-purge")


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="the audit trail: run its receiver, prove it")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    sub.add_parser("serve", help="run the receiver Trino's event listener posts to (settings from the environment)"
                   ).set_defaults(func=cmd_serve)
    sub.add_parser("verify", help="prove the hash chain and its anchors; name the first record that breaks it"
                   ).set_defaults(func=cmd_verify)
    report = sub.add_parser("report", help="who queried what, rows out, denied attempts, queries outside a "
                                           "project's dates")
    report.add_argument("--project", help="a project id (policies/projects/<id>.yaml): its members' queries")
    report.add_argument("--user", help="one person's queries (Keycloak username)")
    report.add_argument("--since", type=_moment, help="from this date or time (UTC), included")
    report.add_argument("--until", type=_moment, help="to this date or time (UTC), excluded")
    report.add_argument("--html", help="write a self-contained HTML page here instead of printing text")
    report.add_argument("--policies", help="policy directory (default: policies/, env SANTELAKE_POLICIES_DIR)")
    report.set_defaults(func=cmd_report)
    purge = sub.add_parser("purge", help="remove records older than the retention, keeping the chain provable")
    when = purge.add_mutually_exclusive_group()
    when.add_argument("--retention-days", type=int, default=RETENTION_DAYS,
                      help=f"keep this many days of records (default {RETENTION_DAYS}: three years)")
    when.add_argument("--before", type=_moment, help="remove the records made before this date or time (UTC)")
    purge.set_defaults(func=cmd_purge)
