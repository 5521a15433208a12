"""`python -m coordinator`: the operator's command, which lives with the Celery side in tasks.cli."""

from tasks.cli import main

main()
