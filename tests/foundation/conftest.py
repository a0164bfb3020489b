import shutil
import sys
from pathlib import Path

import pytest

from agencies import schema_template
from agencies.schema_template import schema_template_ensure


@pytest.fixture
def migration_added_after_the_template(world, tmp_path, settings):
    """The subaccounts app as deployed, plus one migration the current template has never seen; yields the
    template of the deployed migrations."""
    deployed_template = schema_template_ensure()
    package = tmp_path / "probe_subaccounts_migrations"
    shutil.copytree(Path(__file__).resolve().parents[2] / "subaccounts" / "migrations", package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    leaf = sorted(p.stem for p in package.glob("0*.py"))[-1]
    (package / "0999_probe.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('subaccounts', '{leaf}')]\n"
        "    operations = [migrations.RunSQL('CREATE TABLE scale_probe (id integer)', 'DROP TABLE scale_probe')]\n"
    )
    sys.path.insert(0, str(tmp_path))
    settings.MIGRATION_MODULES = {"subaccounts": "probe_subaccounts_migrations"}
    schema_template.tenant_migrations_key.cache_clear()
    try:
        yield deployed_template
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("probe_subaccounts_migrations", None)
        schema_template.tenant_migrations_key.cache_clear()
