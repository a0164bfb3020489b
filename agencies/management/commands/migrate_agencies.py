"""`manage.py migrate_agencies`: the deploy's migrate (DESIGN §12).

Public first, then only the agency schemas that miss a migration, in parallel; then the template new agencies
are cloned from is rebuilt for the new migrations. Any other use (one schema, a target migration, --fake,
--plan, …) is django-tenants' `migrate_schemas`, which keeps working as is.
"""

import os

from django.core.management import call_command
from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand

from agencies.schema_migrate import schemas_behind, schemas_migrate
from agencies.schema_template import schema_template_ensure, stale_templates_drop
from agencies.selectors import agencies_all

STOCK_ONLY_OPTIONS = ("app_label", "migration_name", "fake", "fake_initial", "plan", "check_unapplied", "prune",
                      "run_syncdb", "schema_name", "executor")


class Command(MigrateSchemasCommand):
    help = "Migrate public, then every agency schema that is behind, in parallel; rebuild the agency template."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--jobs", type=int, default=int(os.environ.get("MIGRATE_JOBS", os.cpu_count() or 1)),
                            help="parallel processes for the agency schemas (default: the CPUs, or MIGRATE_JOBS)")

    def handle(self, *args, **options):
        if any(options.get(name) for name in STOCK_ONLY_OPTIONS):
            return super().handle(*args, **options)
        verbosity = int(options["verbosity"])
        shared_only, tenant_only = options.get("shared"), options.get("tenant")
        if not tenant_only:
            call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity,
                         database=options["database"])
        if shared_only:
            return None
        schemas = list(agencies_all().values_list("schema_name", flat=True))
        groups = schemas_behind(schemas=schemas)
        behind = sum(len(group) for group in groups.values())
        if verbosity >= 1:
            self.stdout.write(f"{len(schemas) - behind} of {len(schemas)} agency schemas are up to date; "
                              f"migrating {behind} with {options['jobs']} process(es)")
        schemas_migrate(groups=groups, jobs=max(1, options["jobs"]), verbosity=verbosity, report=self.stdout.write)
        stale_templates_drop()
        schema_template_ensure()
        return None
