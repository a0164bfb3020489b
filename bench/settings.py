"""Settings of the scale benchmark's child processes: the product's, plus what the benchmark varies.

BENCH_STOCK_BACKEND=1      django-tenants' own PostgreSQL backend (introspection scanning every schema)
BENCH_MIGRATIONS=<dir>     the subaccounts app's migrations from <dir>/bench_subaccounts_migrations (one more field)
"""

import os
import sys

from rebill.settings import *  # noqa: F403
from rebill.settings import DATABASES

if os.environ.get("BENCH_STOCK_BACKEND"):
    DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
if os.environ.get("BENCH_MIGRATIONS"):
    sys.path.insert(0, os.environ["BENCH_MIGRATIONS"])
    MIGRATION_MODULES = {"subaccounts": "bench_subaccounts_migrations"}
