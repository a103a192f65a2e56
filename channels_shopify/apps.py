from django.apps import AppConfig


class ChannelsShopifyConfig(AppConfig):
    name = "channels_shopify"
    verbose_name = "Shopify"
