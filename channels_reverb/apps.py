from django.apps import AppConfig


class ChannelsReverbConfig(AppConfig):
    name = "channels_reverb"
    verbose_name = "Reverb"
