from django.apps import AppConfig


class ChannelsWooCommerceConfig(AppConfig):
    name = "channels_woocommerce"
    verbose_name = "WooCommerce"
