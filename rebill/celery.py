"""The Celery app. Tenant tasks run in the schema carried by their message (tenant-schemas-celery)."""

import os

from tenant_schemas_celery.app import CeleryApp
from tenant_schemas_celery.task import TenantTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rebill.settings")

app = CeleryApp("rebill")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class MissingTenantSchema(RuntimeError):
    """A task meant for one agency's schema arrived without one."""


class AgencyTask(TenantTask):
    """Base for tasks that work inside one agency's schema.

    A message sent outside `tenant_context` would run in the public schema, where the agency's
    tables do not exist — or worse, silently act on nothing. Fail loudly instead.
    """

    abstract = True

    def __call__(self, *args, **kwargs):
        from rebill.tenancy import in_public_schema  # needs Django set up, which this module must not

        if in_public_schema():
            raise MissingTenantSchema(f"{self.name} must run in an agency schema, not public")
        return super().__call__(*args, **kwargs)
