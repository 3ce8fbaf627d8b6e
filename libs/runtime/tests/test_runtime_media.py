import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from vitrine_runtime.media import (
    LocalMediaStore,
    MediaNotFoundError,
    MediaRefusedError,
    S3MediaStore,
    open_media_store,
)
from vitrine_runtime.settings import ServiceSettings
from vitrine_stack.seaweed import EmbeddedSeaweedFS

HOSTILE = [
    "http://127.0.0.1:8080/admin",
    "file:///etc/passwd",
    "media://../../etc/passwd",
    "media://crops/../../etc/passwd",
    "media:///etc/passwd",
    "s3://other-bucket/key",
    "media://user@host/x",
    "media://host:22/x",
    "media://crops/x.jpg?version=2",
    "/etc/passwd",
    "../secret",
]


@pytest.mark.parametrize("uri", HOSTILE)
async def test_nothing_outside_the_store_is_read(tmp_path: Path, uri: str) -> None:
    store = LocalMediaStore(tmp_path / "media")
    with pytest.raises(MediaRefusedError):
        await store.get(uri)


async def test_a_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    store = LocalMediaStore(tmp_path / "media")
    (store.root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(MediaRefusedError):
        await store.get("media://link.txt")


async def test_put_then_get_round_trips(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    uri = await store.put("crops/v1/t1-0.jpg", b"jpeg", "image/jpeg")
    assert uri == "media://crops/v1/t1-0.jpg"
    assert await store.get(uri) == b"jpeg"
    with pytest.raises(MediaRefusedError):
        await store.get(uri, max_bytes=2)
    with pytest.raises(MediaNotFoundError):
        await store.get("media://crops/v1/missing.jpg")


# ----- the S3 store, against a real SeaweedFS -------------------------------------------


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSeaweedFS]:
    server = EmbeddedSeaweedFS(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_store(seaweed: EmbeddedSeaweedFS, bucket: str | None = None) -> S3MediaStore:
    return S3MediaStore(
        seaweed.s3_endpoint,
        bucket or f"media-{uuid.uuid4().hex[:10]}",
        "us-east-1",
        seaweed.access_key,
        seaweed.secret_key,
    )


def record_requests(store: S3MediaStore) -> list[str]:
    """The S3 operations the store's client sends over the network from now on."""
    sent: list[str] = []

    def before_send(event_name: str, **_: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])  # "before-send.s3.GetObject"

    store.client.meta.events.register("before-send.s3.*", before_send)
    return sent


@pytest.mark.parametrize("uri", HOSTILE)
async def test_s3_store_refuses_hostile_uris_without_a_request(
    seaweed: EmbeddedSeaweedFS, uri: str
) -> None:
    store = s3_store(seaweed)
    sent = record_requests(store)
    with pytest.raises(MediaRefusedError):
        await store.get(uri)
    with pytest.raises(MediaRefusedError):
        await store.get(uri, max_bytes=10)
    with pytest.raises(MediaRefusedError):
        await store.size(uri)
    assert sent == []


@pytest.mark.parametrize("key", ["../x.jpg", "/etc/passwd", "crops/../../x", "a//b/..", ""])
async def test_s3_store_refuses_hostile_keys_on_put(seaweed: EmbeddedSeaweedFS, key: str) -> None:
    store = s3_store(seaweed)
    sent = record_requests(store)
    with pytest.raises(MediaRefusedError):
        await store.put(key, b"x", "image/jpeg")
    assert sent == []


async def test_s3_put_get_size_round_trip(seaweed: EmbeddedSeaweedFS) -> None:
    store = s3_store(seaweed)
    uri = await store.put("crops/v1/t1-0.jpg", b"jpeg bytes", "image/jpeg")
    assert uri == "media://crops/v1/t1-0.jpg"
    assert await store.get(uri) == b"jpeg bytes"
    assert await store.size(uri) == len(b"jpeg bytes")
    # The object sits at s3://<bucket>/<key>, with its content type, for any S3 client.
    head = store.client.head_object(Bucket=store.bucket, Key="crops/v1/t1-0.jpg")
    assert head["ContentType"] == "image/jpeg"
    # Overwriting replaces it whole.
    await store.put("crops/v1/t1-0.jpg", b"v2", "image/jpeg")
    assert await store.get(uri) == b"v2"


async def test_s3_bucket_is_created_on_first_put(seaweed: EmbeddedSeaweedFS) -> None:
    store = s3_store(seaweed)
    buckets = {b["Name"] for b in store.client.list_buckets()["Buckets"]}
    assert store.bucket not in buckets
    await store.put("videos/v1.mp4", b"\x00" * 10, "video/mp4")
    buckets = {b["Name"] for b in store.client.list_buckets()["Buckets"]}
    assert store.bucket in buckets
    # A second store on the same bucket (another replica) finds it and writes beside it.
    other = s3_store(seaweed, store.bucket)
    await other.ensure_bucket()
    await other.put("videos/v2.mp4", b"\x01", "video/mp4")
    assert await store.get("media://videos/v2.mp4") == b"\x01"


async def test_s3_max_bytes_is_checked_before_the_download(seaweed: EmbeddedSeaweedFS) -> None:
    store = s3_store(seaweed)
    uri = await store.put("videos/big.mp4", b"x" * 100, "video/mp4")
    sent = record_requests(store)
    with pytest.raises(MediaRefusedError, match="larger than 99 bytes"):
        await store.get(uri, max_bytes=99)
    assert "HeadObject" in sent
    assert "GetObject" not in sent  # refused on the HEAD: nothing downloaded
    assert await store.get(uri, max_bytes=100) == b"x" * 100
    empty = await store.put("videos/empty.mp4", b"", "video/mp4")
    assert await store.get(empty, max_bytes=0) == b""


async def test_s3_read_is_capped_when_the_object_grows_after_the_head(
    seaweed: EmbeddedSeaweedFS,
) -> None:
    store = s3_store(seaweed)
    uri = await store.put("videos/growing.mp4", b"x" * 10, "video/mp4")
    writer = s3_store(seaweed, store.bucket)

    def replace_with_a_bigger_one(**_: Any) -> None:
        writer.client.put_object(Bucket=store.bucket, Key="videos/growing.mp4", Body=b"y" * 5000)

    # Between the store's HEAD (10 bytes: under the limit) and its GET.
    store.client.meta.events.register("before-call.s3.GetObject", replace_with_a_bigger_one)
    with pytest.raises(MediaRefusedError, match="larger than 100 bytes"):
        await store.get(uri, max_bytes=100)
    assert await writer.size(uri) == 5000  # the race really happened


async def test_s3_missing_object_or_bucket_is_not_found(seaweed: EmbeddedSeaweedFS) -> None:
    store = s3_store(seaweed)
    await store.put("crops/v1/there.jpg", b"j", "image/jpeg")
    for call in (
        store.get("media://crops/v1/missing.jpg"),
        store.get("media://crops/v1/missing.jpg", max_bytes=10),
        store.size("media://crops/v1/missing.jpg"),
    ):
        with pytest.raises(MediaNotFoundError):
            await call
    no_bucket = s3_store(seaweed)  # never written: its bucket does not exist
    with pytest.raises(MediaNotFoundError):
        await no_bucket.get("media://crops/v1/there.jpg")
    with pytest.raises(MediaNotFoundError):
        await no_bucket.size("media://crops/v1/there.jpg")


async def test_s3_wrong_secret_is_an_error_not_a_missing_object(
    seaweed: EmbeddedSeaweedFS,
) -> None:
    store = s3_store(seaweed)
    uri = await store.put("crops/v1/a.jpg", b"j", "image/jpeg")
    impostor = S3MediaStore(
        seaweed.s3_endpoint, store.bucket, "us-east-1", seaweed.access_key, "not-the-secret"
    )
    with pytest.raises(ClientError) as caught:
        await impostor.get(uri)
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


async def test_s3_store_serves_concurrent_calls(seaweed: EmbeddedSeaweedFS) -> None:
    store = s3_store(seaweed)
    payloads = {f"crops/v9/t{i}.jpg": bytes([i]) * (i + 1) for i in range(12)}
    uris = await asyncio.gather(*(store.put(k, v, "image/jpeg") for k, v in payloads.items()))
    got = await asyncio.gather(*(store.get(u) for u in uris))
    assert got == list(payloads.values())


async def test_open_media_store_picks_s3_when_an_endpoint_is_set(
    seaweed: EmbeddedSeaweedFS, tmp_path: Path
) -> None:
    bucket = f"media-{uuid.uuid4().hex[:10]}"
    settings = ServiceSettings(
        service_name="test",
        media_root=str(tmp_path / "unused"),
        media_s3_endpoint=seaweed.s3_endpoint,
        media_s3_bucket=bucket,
        media_s3_access_key=seaweed.access_key,
        media_s3_secret_key=seaweed.secret_key,
    )
    store = open_media_store(settings)
    assert isinstance(store, S3MediaStore)
    uri = await store.put("crops/x.jpg", b"jpeg", "image/jpeg")
    assert await s3_store(seaweed, bucket).get(uri) == b"jpeg"
    assert not (tmp_path / "unused" / "crops").exists()

    local = open_media_store(
        ServiceSettings(service_name="test", media_root=str(tmp_path), media_s3_endpoint=None)
    )
    assert isinstance(local, LocalMediaStore)


def test_half_a_key_pair_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        S3MediaStore("http://127.0.0.1:1", "media", access_key="only-this")
