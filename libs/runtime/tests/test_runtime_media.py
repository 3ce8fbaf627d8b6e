from pathlib import Path

import pytest

from vitrine_runtime.media import LocalMediaStore, MediaNotFoundError, MediaRefusedError

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
