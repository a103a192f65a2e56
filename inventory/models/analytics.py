"""Analytics summaries: figures computed ahead so the dashboard and the API need not recompute them."""

from django.db import models

from accounts.models import AccountOwned, account_key


class AnalyticsSummary(AccountOwned):
    """One analytics figure of one account for one filter, as computed at `computed_at`.

    At 100,000 items and 50,000 orders the figures take 0.1-1 s each live (the "now" figures
    read every live listing with its item; a year of sales is most of the order lines), so
    services/analytics/summary.py stores each answer here, beat refreshes the ones read lately
    (inventory.analytics_summaries_refresh, every 5 minutes) and the dashboard and API say how
    old the figure they show is. `rows` is the figure's answer, its decimals, dates and
    durations tagged so they come back as the same Python values.
    """

    account = account_key(db_index=False)
    figure = models.CharField(max_length=40)
    filter_key = models.CharField(max_length=120, help_text="start..end|channel|bucket of the filter.")
    period = models.CharField(
        max_length=8, blank=True, help_text="The preset (30d...) the filter came from: beat moves it to today."
    )
    rows = models.JSONField()
    computed_at = models.DateTimeField()
    read_at = models.DateTimeField(help_text="Last shown: beat refreshes what was read in the last day.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "filter_key", "figure"], name="analytics_summary_unique")
        ]
        indexes = [models.Index(fields=["read_at"], name="analytics_summary_read")]

    def __str__(self) -> str:
        return f"{self.figure} {self.filter_key} @ {self.computed_at:%Y-%m-%d %H:%M:%S}"
