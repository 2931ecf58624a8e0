import numpy as np
import pytest

from utils import cache


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEG_DATA_DIR", str(tmp_path / "data"))


def arrays(n=3, size=4):
    images = np.arange(n * size * size * 3, dtype=np.uint8).reshape(n, size, size, 3)
    return images, (images[..., 0] % 2).astype(np.uint8)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_decode_parallel_keeps_order(workers):
    images, masks = arrays(5)
    out = cache.decode_parallel(5, 4, lambda i: (images[i], masks[i]), workers=workers, progress=False)
    np.testing.assert_array_equal(out[0], images)
    np.testing.assert_array_equal(out[1], masks)


def test_decode_parallel_reports_the_first_broken_item():
    def decode(i):
        raise ValueError(f"item {i}")

    with pytest.raises(ValueError, match="item 0"):
        cache.decode_parallel(4, 4, decode, workers=2, progress=False)


def test_round_trip_and_mismatch(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = [src / "a.bmp", src / "b.bmp"]
    for f in files:
        f.write_bytes(b"x")
    path = cache.cache_file("ph2", "v1", src, 4, None, files)
    images, masks = arrays(2)
    cache.write_cache(path, ["a", "b"], images=images, masks=masks)
    hit = cache.read_cache(path, ["a", "b"], 4)
    np.testing.assert_array_equal(hit["images"], images)
    assert cache.read_cache(path, ["b", "a"], 4) is None  # other items
    assert cache.read_cache(path, ["a", "b"], 8) is None  # other size


def test_a_changed_file_gets_a_new_cache_and_the_old_one_goes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    f = src / "a.bmp"
    f.write_bytes(b"x")
    first = cache.cache_file("ph2", "v1", src, 4, None, [f])
    images, masks = arrays(1)
    cache.write_cache(first, ["a"], images=images, masks=masks)
    f.write_bytes(b"xy")  # new size: a new state of the source
    second = cache.cache_file("ph2", "v1", src, 4, None, [f])
    assert second != first
    cache.write_cache(second, ["a"], images=images, masks=masks)
    assert second.is_file() and not first.exists()


def test_a_damaged_cache_is_ignored(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not an npz")
    assert cache.read_cache(path, ["a"], 4) is None
