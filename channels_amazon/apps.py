from django.apps import AppConfig


class ChannelsAmazonConfig(AppConfig):
    name = "channels_amazon"
    verbose_name = "Amazon"
