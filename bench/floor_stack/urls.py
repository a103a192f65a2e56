from django.urls import path

from floor_stack.views import hook

urlpatterns = [path("hook/", hook)]
