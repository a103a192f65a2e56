"""A loopback Reverb speaking Reverb's wire format, for tests, benchmarks and the demo."""

from .server import DEFAULT_TOKEN, Delivery, Faults, RecordedRequest, ReverbSandbox
from .store import ReverbStore, SandboxError

__all__ = ["DEFAULT_TOKEN", "Delivery", "Faults", "RecordedRequest", "ReverbSandbox", "ReverbStore", "SandboxError"]
