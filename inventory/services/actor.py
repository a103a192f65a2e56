"""Who performs an inventory operation and from where."""

from dataclasses import dataclass

from ..models import Source


@dataclass(frozen=True)
class Actor:
    """Who performs an operation and through which surface (admin, api, command, a channel)."""

    user: object | None = None
    source: str = Source.SYSTEM

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)


SYSTEM = Actor()
