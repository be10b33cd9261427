"""Settings for the benchmark server: the product's own settings, plus a bare view to compare.

Everything else (middleware, database, cache) is exactly what production runs, so the ratio
between a widget endpoint and the bare view measures the endpoint's own work.
"""

import os

# The benchmark runs on PostgreSQL and Redis only; default to its own database and cache db.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dynchat_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
# One key for every bench process: visitor keys signed while preparing the data must verify in
# the server. (Not a secret: the bench database holds nothing but generated data.)
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")

from dynchat.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
# Requests come from wrk on the loopback interface.
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
