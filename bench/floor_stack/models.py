from django.db import models


class Item(models.Model):
    state = models.CharField(max_length=16, default="active")

    class Meta:
        db_table = "floor_item"

    def __str__(self) -> str:
        return f"item {self.pk} {self.state}"


class Listing(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="listings")
    market = models.IntegerField()
    state = models.CharField(max_length=16, default="live")
    ended_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "floor_listing"

    def __str__(self) -> str:
        return f"listing {self.pk} on market {self.market} {self.state}"


class WebhookEvent(models.Model):
    body = models.JSONField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "floor_webhookevent"

    def __str__(self) -> str:
        return f"webhook event {self.pk}"
