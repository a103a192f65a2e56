"""Every channel in settings.CHANNELS keeps the contract of inventory/channels.py, so the engine,
the connections API and the admin work for each without knowing it by name."""

from __future__ import annotations

import inspect

import pytest
from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string

from inventory.api.connections import ConnectionSerializer
from inventory.channels import channel
from inventory.models import ChannelConnection

REQUIRED = [
    "publish",
    "revise",
    "end",
    "read_listing",
    "read_all_listings",
    "find_listing",
    "pull",
    "parse_webhook",
    "webhook_orders",
    "check",
]


@pytest.mark.parametrize("name", list(settings.CHANNELS))
def test_the_channel_module_provides_the_whole_contract(name):
    sync = channel(name)

    assert name == sync.NAME
    assert sync.LABEL
    missing = [fn for fn in REQUIRED if not callable(getattr(sync, fn, None))]
    assert missing == [], f"{name} lacks {missing}"
    assert "full_scan" in inspect.signature(sync.pull).parameters
    assert isinstance(getattr(sync, "DEFAULT_PRIORITY", None), int)


@pytest.mark.parametrize("name", list(settings.CHANNELS))
def test_the_channel_connection_and_its_api_serializer_plug_into_the_engine(name):
    sync = channel(name)
    model = apps.get_model(sync.CONNECTION_MODEL)
    serializer = import_string(sync.CONNECTION_SERIALIZER)

    assert issubclass(model, ChannelConnection)
    assert issubclass(serializer, ConnectionSerializer)
    assert serializer.Meta.model is model
    assert set(ConnectionSerializer.COMMON_FIELDS) <= set(serializer.Meta.fields)
    for secret in serializer.Meta.secret_fields:
        assert secret in serializer.Meta.fields, f"{name}: secret {secret} is not a field"


def test_default_priorities_follow_the_platform_order():
    order = {name: channel(name).DEFAULT_PRIORITY for name in settings.CHANNELS}
    known = [name for name in ("shopify", "reverb", "vr", "ebay") if name in order]

    assert [order[name] for name in known] == sorted(order[name] for name in known)
