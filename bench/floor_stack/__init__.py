"""The bare stack of bench/floor.py: a Django app, a Celery app, one view, two tasks (no product code)."""
