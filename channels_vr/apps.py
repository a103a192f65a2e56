from django.apps import AppConfig


class ChannelsVrConfig(AppConfig):
    name = "channels_vr"
    verbose_name = "Vintage & Rare"
