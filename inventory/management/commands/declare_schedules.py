import json

from django.conf import settings
from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from inventory.services.schedules import connection_schedules_sync

# name -> (task, crontab fields). Per-connection pulls are declared from the connections.
SCHEDULES = {
    "inventory: re-enqueue listings lagging their desired state": (
        "inventory.sweep_listings",
        {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: re-queue webhook deliveries still pending": (
        "inventory.sweep_webhooks",
        {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: send again syncs staff asked for that no worker took": (
        "inventory.sweep_sync_requests",
        {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: nightly read-back audit of every live listing": (
        "inventory.reconcile_all",
        {"minute": "30", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: alerts for listings not ended after a sale and webhooks that stopped": (
        "inventory.alert_checks",
        {"minute": "*/5", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: daily e-mail digest of open alerts": (
        "inventory.alert_digest",
        {"minute": "0", "hour": "7", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: auto-archive old sold and shipped items": (
        "inventory.auto_archive",
        {"minute": "15", "hour": "3", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: prune old sync runs and webhook deliveries (RETENTION_DAYS)": (
        "inventory.prune_history",
        {"minute": "45", "hour": "3", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "inventory: refresh the analytics figures read in the last day": (
        "inventory.analytics_summaries_refresh",
        {"minute": "*/5", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "billing: roll up usage and refresh payment banners": (
        "billing.usage_rollup",
        {"minute": "*/10", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "billing: report yesterday's BUSINESS listing overage to Stripe": (
        "billing.report_overage",
        {"minute": "20", "hour": "0", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "billing: retry unprocessed Stripe events": (
        "billing.retry_stripe_events",
        {"minute": "*/5", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
    "billing: re-read live subscriptions from Stripe": (
        "billing.resync_subscriptions",
        {"minute": "40", "hour": "2", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"},
    ),
}


EVERY_MINUTE = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}


class Command(BaseCommand):
    help = "Create or update every periodic task in django-celery-beat (safe to run on every deploy)."

    def handle(self, *args, **options):
        for name, (task, cron) in SCHEDULES.items():
            schedule, _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **cron)
            _, created = PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": task, "crontab": schedule, "interval": None, "enabled": True}
            )
            self.stdout.write(f"{'created' if created else 'updated'}: {name} -> {task}")
        every_minute = CrontabSchedule.objects.get_or_create(timezone="UTC", **EVERY_MINUTE)[0]
        for queue in settings.CELERY_WORKER_QUEUES:
            # One heartbeat per queue, sent to that queue: readiness shows which queues have a worker.
            name = f"health: worker heartbeat on {queue}"
            _, created = PeriodicTask.objects.update_or_create(
                name=name,
                defaults={
                    "task": "inventory.worker_heartbeat",
                    "crontab": every_minute,
                    "interval": None,
                    "args": json.dumps([queue]),
                    "queue": queue,
                    "expire_seconds": 60,  # a heartbeat nobody took within a minute says nothing
                    "enabled": True,
                },
            )
            self.stdout.write(f"{'created' if created else 'updated'}: {name} -> inventory.worker_heartbeat")
        for verb, names in connection_schedules_sync().items():
            for name in names:
                self.stdout.write(f"{verb}: {name}")
