"""The media store for videos and crops: a local folder by default, S3 when configured.

Objects are named by `media://<key>` URIs. `get` accepts nothing else: no other scheme,
no host, no absolute path, no `..`: a URI that arrives in an event can never make a
service read outside its store (no server-side request forgery, no path traversal).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

from vitrine_runtime.settings import ServiceSettings

SCHEME = "media"
_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class MediaRefusedError(ValueError):
    """A URI or key that points outside the media store."""


class MediaNotFoundError(LookupError):
    """A well-formed media URI with no object behind it."""


def key_from_uri(uri: str) -> str:
    """The store key of a `media://` URI, or MediaRefusedError saying why it is refused."""
    parts = urlsplit(uri)
    if parts.scheme != SCHEME:
        raise MediaRefusedError(f"only {SCHEME}:// URIs are accepted, got scheme {parts.scheme!r}")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise MediaRefusedError("media URIs carry no query, fragment, user or port")
    return validate_key(f"{parts.netloc}{parts.path}")


def validate_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or not path.parts:
        raise MediaRefusedError(f"invalid media key {key!r}")
    for part in path.parts:
        if not _KEY_PART.match(part) or part in {".", ".."}:
            raise MediaRefusedError(f"invalid media key segment {part!r} in {key!r}")
    return str(path)


def uri_for(key: str) -> str:
    return f"{SCHEME}://{validate_key(key)}"


class MediaStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> str: ...
    async def get(self, uri: str, max_bytes: int | None = None) -> bytes: ...
    async def size(self, uri: str) -> int: ...


class LocalMediaStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, uri: str) -> Path:
        path = (self.root / key_from_uri(uri)).resolve()
        # Defence in depth against symlinks planted inside the store.
        if not path.is_relative_to(self.root):
            raise MediaRefusedError(f"{uri} resolves outside the media store")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        uri = uri_for(key)
        path = self.path_of(uri)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)  # atomic: readers never see half a file

        await asyncio.to_thread(write)
        return uri

    async def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        path = self.path_of(uri)
        if not path.is_file():
            raise MediaNotFoundError(f"no media object at {uri}")
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise MediaRefusedError(f"{uri} is larger than {max_bytes} bytes")
        return await asyncio.to_thread(path.read_bytes)

    async def size(self, uri: str) -> int:
        path = self.path_of(uri)
        if not path.is_file():
            raise MediaNotFoundError(f"no media object at {uri}")
        return path.stat().st_size


def open_media_store(settings: ServiceSettings) -> MediaStore:
    if settings.media_s3_endpoint:
        raise NotImplementedError(
            "S3 media store: set MEDIA_S3_ENDPOINT only once the S3 adapter lands (issue 3)"
        )
    return LocalMediaStore(settings.media_root)
