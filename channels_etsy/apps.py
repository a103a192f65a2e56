from django.apps import AppConfig


class ChannelsEtsyConfig(AppConfig):
    name = "channels_etsy"
    verbose_name = "Etsy"
