from inventory.models import Source
from inventory.services import Actor


def api_actor(request) -> Actor:
    """Changes made through the API are recorded as the signed-in user, source "api"."""
    return Actor(user=request.user, source=Source.API)
