"""The Celery side: the app, the cache_file and reap_dead_workers tasks, assign(), and the worker signals."""

from celery import Celery

from . import signals  # noqa: F401  (connects the worker signal handlers)
from .caching import cache_file
from .dispatch import assign
from .reaper import reap_dead_workers

app = Celery("tasks")
app.config_from_object("celeryconfig")

__all__ = ["app", "assign", "cache_file", "reap_dead_workers"]
