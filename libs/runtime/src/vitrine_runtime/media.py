"""The media store for videos and crops: a local folder by default, S3 when configured.

Objects are named by `media://<key>` URIs. `get` accepts nothing else: no other scheme,
no host, no absolute path, no `..`: a URI that arrives in an event can never make a
service read outside its store (no server-side request forgery, no path traversal).
Both stores check a URI with the same `key_from_uri` before they touch anything, so the
S3 store sends no request at all for a refused URI.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
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


# Error codes S3 servers use for "no such object" (HEAD answers carry no body, so no code
# but the status) and for a bucket that does not exist (no bucket: no object either).
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_READ_CHUNK = 1 << 20
_botocore_session: Any = None
_botocore_session_lock = threading.Lock()


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _s3_client(
    endpoint: str | None, region: str, access_key: str | None, secret_key: str | None
) -> Any:
    # Imported here: services on the local store do not pay for loading botocore.
    import botocore.session
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},  # 3 tries in all, with backoff
        # Path-style URLs and no default CRC checksums: what S3-compatible servers
        # (SeaweedFS, MinIO, Ceph) accept; AWS accepts both too.
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=16,
    )
    global _botocore_session
    # One session for every store: it caches the parsed S3 model (a fresh one costs
    # 0.3-0.6 s per client). Sessions are not thread-safe, hence the lock; the clients
    # they make are, and each store shares its client between all its calls.
    with _botocore_session_lock:
        if _botocore_session is None:
            _botocore_session = botocore.session.Session()
        return _botocore_session.create_client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )


class S3MediaStore:
    """Objects at s3://<bucket>/<key>, named by the same `media://<key>` URIs.

    Without a key pair botocore's usual credential chain applies (environment, profile,
    instance role). The bucket is created on first `put` (or `ensure_bucket`) if missing.
    A missing object (or bucket) is MediaNotFoundError; other S3 errors, an outage among
    them, propagate as botocore errors so that the caller retries.
    """

    def __init__(
        self,
        endpoint: str | None,
        bucket: str,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        client: Any = None,
    ) -> None:
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both the S3 access key and the secret key, or neither")
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.client: Any = (
            client if client is not None else _s3_client(endpoint, region, access_key, secret_key)
        )
        self._bucket_ready = False
        self._bucket_lock = asyncio.Lock()

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; checked once per store."""
        if self._bucket_ready:
            return
        async with self._bucket_lock:
            if not self._bucket_ready:
                await asyncio.to_thread(self._ensure_bucket)
                self._bucket_ready = True

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if _error_code(error) not in _NOT_FOUND:
                raise  # 403: someone else's bucket, or our keys may not look: say so
        create: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # AWS refuses the constraint for its default region
            create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**create)
        except ClientError:
            # Another replica may have created it a moment ago; then it is ours to use.
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                pass
            else:
                return
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        uri = uri_for(key)
        object_key = key_from_uri(uri)
        await self.ensure_bucket()
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=object_key,
            Body=data,
            ContentType=content_type,
        )
        return uri

    async def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        object_key = key_from_uri(uri)  # refused here, before any request
        return await asyncio.to_thread(self._get, uri, object_key, max_bytes)

    async def size(self, uri: str) -> int:
        object_key = key_from_uri(uri)
        return await asyncio.to_thread(self._size, uri, object_key)

    def _size(self, uri: str, object_key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise MediaNotFoundError(f"no media object at {uri}") from error
            raise
        return int(head["ContentLength"])

    def _get(self, uri: str, object_key: str, max_bytes: int | None) -> bytes:
        from botocore.exceptions import ClientError

        if max_bytes is not None and self._size(uri, object_key) > max_bytes:
            raise MediaRefusedError(f"{uri} is larger than {max_bytes} bytes")
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                raise MediaNotFoundError(f"no media object at {uri}") from error
            raise
        body = response["Body"]
        try:
            if max_bytes is None:
                return bytes(body.read())
            # The object may have been replaced by a larger one since the HEAD: read no
            # more than one byte past the limit whatever the server sends.
            chunks: list[bytes] = []
            total = 0
            while chunk := body.read(min(_READ_CHUNK, max_bytes + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise MediaRefusedError(f"{uri} is larger than {max_bytes} bytes")
            return b"".join(chunks)
        finally:
            body.close()

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()


def open_media_store(settings: ServiceSettings) -> MediaStore:
    if settings.media_s3_endpoint:
        return S3MediaStore(
            settings.media_s3_endpoint,
            settings.media_s3_bucket,
            settings.media_s3_region,
            settings.media_s3_access_key,
            settings.media_s3_secret_key,
        )
    return LocalMediaStore(settings.media_root)
