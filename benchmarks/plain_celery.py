"""The baseline app: what Celery alone does for a killed worker, with acks_late tasks on Redis (benchmarks only)."""

import os
import time

import redis
from celery import Celery

app = Celery("plain_celery", broker=os.environ.get("PLAIN_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=os.environ.get("PLAIN_QUEUE", "plain"),
)


@app.task(name="plain.work")
def work(index: int, key: str) -> None:
    """Stand-in for caching one file: takes a while, then records that it ran."""
    time.sleep(float(os.environ.get("PLAIN_TASK_SECONDS", "0.05")))
    redis.Redis.from_url(app.conf.broker_url).sadd(key, index)
