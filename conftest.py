# The in-process celery_app / celery_worker fixtures; pytest-celery's Docker-based ones are off (-p no:celery).
pytest_plugins = ("celery.contrib.pytest",)
