"""Celery settings for the `worker` service (dagster-celery imports a module of this name when a worker starts).

Broker and results on the project's Redis (GLAZE_REDIS_URL); the delivery settings are the ones the
`enrich_table_on_workers` job's run config uses, from one place (`glaze_pipeline.defs.merge.chunked`).
"""

from glaze_pipeline.config import settings
from glaze_pipeline.defs.merge.chunked import CELERY_SETTINGS

broker_url = result_backend = settings().redis_url or "redis://redis:6379/0"
globals().update(CELERY_SETTINGS)
