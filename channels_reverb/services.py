"""Reverb operations staff trigger by hand (the admin calls these; the sync engine uses sync.py)."""

from __future__ import annotations

from inventory.channels import ChannelError

from .models import ReverbConnection
from .sync import client_for


def connection_check(connection: ReverbConnection) -> tuple[bool, str]:
    """Read the shop's account with the token: (works, what staff should know). Reads only."""
    try:
        account = client_for(connection).account()
    except ChannelError as error:
        return False, error.message
    shop = str(account.get("shop_name") or "")
    return True, f"The token works{f' for {shop}' if shop else ''}."
