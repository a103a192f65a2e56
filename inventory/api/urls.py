from rest_framework.routers import DefaultRouter

from .channel_views import (
    AlertViewSet,
    ChannelConnectionViewSet,
    ChannelListingViewSet,
    ConflictViewSet,
    SyncRunViewSet,
)
from .views import ItemViewSet, OrderViewSet

router = DefaultRouter()
router.register("items", ItemViewSet, basename="item")
router.register("orders", OrderViewSet, basename="order")
router.register("listings", ChannelListingViewSet, basename="listing")
router.register("connections", ChannelConnectionViewSet, basename="connection")
router.register("sync-runs", SyncRunViewSet, basename="sync-run")
router.register("conflicts", ConflictViewSet, basename="conflict")
router.register("alerts", AlertViewSet, basename="alert")
urlpatterns = router.urls
