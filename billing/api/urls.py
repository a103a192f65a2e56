from django.urls import path

from . import views

urlpatterns = [
    path("", views.BillingOverviewView.as_view(), name="billing-overview"),
    path("plans/", views.PlanListView.as_view(), name="billing-plans"),
    path("checkout/", views.CheckoutView.as_view(), name="billing-checkout"),
    path("portal/", views.PortalView.as_view(), name="billing-portal"),
    path("change-plan/", views.ChangePlanView.as_view(), name="billing-change-plan"),
    path("cancel/", views.CancelView.as_view(), name="billing-cancel"),
    path("invoices/", views.InvoiceListView.as_view(), name="billing-invoices"),
]
