from django.apps import AppConfig


class ChannelsEbayConfig(AppConfig):
    name = "channels_ebay"
    verbose_name = "eBay"
