"""What the health endpoints read that no other table records: when each queue's worker last answered."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time a worker consuming this queue ran the heartbeat task (beat sends one a minute per queue).

    Platform data, not a shop's: no account, so row-level security does not apply.
    """

    queue = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    beat_at = models.DateTimeField()

    class Meta:
        ordering = ["queue"]

    def __str__(self) -> str:
        return f"{self.queue} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
