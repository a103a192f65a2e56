from rest_framework.routers import DefaultRouter

from .views import ItemViewSet, OrderViewSet

router = DefaultRouter()
router.register("items", ItemViewSet, basename="item")
router.register("orders", OrderViewSet, basename="order")
urlpatterns = router.urls
