"""The item's photos, fetched over plain HTTP to be uploaded as files (V&R takes files, not URLs)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import requests

from inventory.channels import PermanentChannelError, TransientChannelError

from .pages import Photo

MAX_PHOTO_BYTES = 15 * 1024 * 1024


def download_photo(url: str, *, timeout: float = 20.0) -> Photo:
    """One of the item's images, fetched to be uploaded as a file (V&R takes files, not URLs)."""
    try:
        response = requests.get(url, timeout=timeout, stream=True)
    except requests.RequestException as error:
        raise TransientChannelError(f"could not download the photo {url}: {error}") from error
    if response.status_code >= 500:
        raise TransientChannelError(f"the photo {url} answered {response.status_code}", status=response.status_code)
    if response.status_code >= 400:
        raise PermanentChannelError(f"the photo {url} answered {response.status_code}", status=response.status_code)
    data = response.raw.read(MAX_PHOTO_BYTES + 1, decode_content=True)
    if len(data) > MAX_PHOTO_BYTES:
        raise PermanentChannelError(f"the photo {url} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    mime = (response.headers.get("content-type") or "image/jpeg").split(";")[0].strip()
    name = Path(urlparse(url).path).name or "photo.jpg"
    return Photo(name=name[:100], mime_type=mime, data=data)
