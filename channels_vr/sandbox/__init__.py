"""A loopback Vintage & Rare dealer site for tests, benchmarks and the demo."""

from .server import DEFAULT_PASSWORD, DEFAULT_USERNAME, RecordedRequest, Switches, VRSandbox

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USERNAME", "RecordedRequest", "Switches", "VRSandbox"]
