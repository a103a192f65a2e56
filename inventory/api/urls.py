from rest_framework.routers import DefaultRouter

from .analytics import AnalyticsViewSet
from .channel_views import (
    AlertViewSet,
    ChannelListingViewSet,
    ConflictViewSet,
    SyncRunViewSet,
    WebhookEventViewSet,
)
from .connections import ChannelConnectionViewSet
from .views import ItemViewSet, OrderViewSet

router = DefaultRouter()
router.register("items", ItemViewSet, basename="item")
router.register("orders", OrderViewSet, basename="order")
router.register("listings", ChannelListingViewSet, basename="listing")
router.register("connections", ChannelConnectionViewSet, basename="connection")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("conflicts", ConflictViewSet, basename="conflict")
router.register("alerts", AlertViewSet, basename="alert")
router.register("webhook-events", WebhookEventViewSet, basename="webhook-event")
router.register("analytics", AnalyticsViewSet, basename="analytics")
urlpatterns = router.urls
