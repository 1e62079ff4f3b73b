"""pipeline/data.py: every source and format on tiny data in the real formats, the validation split, the .npz
round trip, and every kind of bad input (each a DataError naming the file). No network."""

from __future__ import annotations

import gzip
import os
import pickle
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import data, paths
from pipeline.errors import DataError
from tests.datagen import (CIFAR_CLASSES, make_cifar_batches, make_cifar_tarball, make_image_folder, make_mnist_idx,
                           params_for, write_cifar_pickle, write_idx)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def prep(name="ds", seed=0, **fields) -> data.Prepared:
    out = data.prepare(params_for(name, seed=seed, **fields), name)
    assert out == paths.prepared(name) and out.exists()
    return data.load_prepared(name)


def check_arrays(d: data.Prepared, n_train, n_val, n_test, shape, num_classes):
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        x, y = getattr(d, f"x_{split}"), getattr(d, f"y_{split}")
        assert x.dtype == np.uint8 and x.shape == (n, *shape), split
        assert y.dtype == np.int64 and y.shape == (n,) and (y >= 0).all() and (y < num_classes).all(), split
    assert (d.channels, d.image_size, d.num_classes) == (shape[0], shape[1], num_classes)
    assert d.meta["counts"] == {"train": n_train, "val": n_val, "test": n_test}


def split_of(x: np.ndarray, n: int, val_size: int, seed: int = 0):
    perm = np.random.default_rng(seed).permutation(n)
    return x[np.sort(perm[val_size:])], x[np.sort(perm[:val_size])]


def cifar_original(folder: Path):
    batches = [pickle.loads((folder / f"data_batch_{i}").read_bytes(), encoding="bytes") for i in range(1, 6)]
    test = pickle.loads((folder / "test_batch").read_bytes(), encoding="bytes")
    x = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
    y = np.concatenate([b[b"labels"] for b in batches])
    return x, y, test[b"data"].reshape(-1, 3, 32, 32), np.array(test[b"labels"])


# ---- sources and formats ------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["parent", "batches"])
def test_cifar_batches_dir(in_tmp, cifar_dir, where):
    path = cifar_dir if where == "parent" else cifar_dir / "cifar-10-batches-py"
    d = prep("cifar10", source="local", path=str(path), val_size=20)
    check_arrays(d, 80, 20, 50, (3, 32, 32), 10)
    assert d.classes == CIFAR_CLASSES
    x, y, x_test, y_test = cifar_original(cifar_dir / "cifar-10-batches-py")
    tr, va = split_of(x, 100, 20)
    assert np.array_equal(d.x_train, tr) and np.array_equal(d.x_val, va)
    assert np.array_equal(d.y_train, split_of(y, 100, 20)[0]) and np.array_equal(d.x_test, x_test)
    assert np.array_equal(d.y_test, y_test)
    assert set(d.meta["md5"]) == set(data.CIFAR_FILES)
    assert d.meta["format"] == "cifar10" and d.meta["source"] == "local"


def test_cifar_tarball(in_tmp, tmp_path):
    tgz = make_cifar_tarball(tmp_path / "dl" / "cifar-10-python.tar.gz")
    d = prep("cifar10", source="local", path=str(tgz), val_size=10, md5=data.md5_file(tgz))
    check_arrays(d, 90, 10, 50, (3, 32, 32), 10)
    make_cifar_batches(tmp_path / "same")
    x, _, x_test, _ = cifar_original(tmp_path / "same" / "cifar-10-batches-py")
    assert np.array_equal(np.concatenate([d.x_train, d.x_val]).sum(0), x.sum(0)) and np.array_equal(d.x_test, x_test)
    assert d.meta["md5"] == {tgz.name: data.md5_file(tgz)}


def test_cifar_protocol5_pickles(in_tmp, cifar_dir):
    """Batches re-pickled by Python 3 / numpy 2 (ndarray reduced through _frombuffer) load too."""
    folder = cifar_dir / "cifar-10-batches-py"
    for f in data.CIFAR_FILES:
        obj = pickle.loads((folder / f).read_bytes(), encoding="bytes")
        (folder / f).write_bytes(pickle.dumps(obj, protocol=5))
    check_arrays(prep("cifar10", source="local", path=str(cifar_dir), val_size=0), 100, 0, 50, (3, 32, 32), 10)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(in_tmp, tmp_path, gz):
    folder = make_mnist_idx(tmp_path / "mnist", n_train=60, n_test=30, gz=gz)
    d = prep("mnist", source="local", path=str(folder), val_size=12)
    check_arrays(d, 48, 12, 30, (1, 28, 28), 10)
    assert d.classes == [str(i) for i in range(10)]
    raw = (folder / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))).read_bytes()
    raw = gzip.decompress(raw) if gz else raw
    assert np.array_equal(d.x_test.reshape(-1), np.frombuffer(raw, np.uint8, offset=16))
    assert len(d.meta["md5"]) == 4 and all(k.endswith(".gz") == gz for k in d.meta["md5"])


@pytest.mark.parametrize("tar", [False, True])
@pytest.mark.parametrize("nested", [None, "my-images"])
def test_image_folder(in_tmp, tmp_path, tar, nested):
    path = make_image_folder(tmp_path / "img", classes=("dog", "cat", "frog"), n_train=8, n_test=4, tar=tar,
                             nested=nested)
    d = prep("pets", source="folder", path=str(path), val_size=6)
    check_arrays(d, 18, 6, 12, (3, 32, 32), 3)
    assert d.classes == ["cat", "dog", "frog"]
    assert np.bincount(np.concatenate([d.y_train, d.y_val])).tolist() == [8, 8, 8]
    assert d.y_test.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    if not tar:  # the test images are the PNGs, pixel for pixel, in class then file order
        first = Image.open(path / (nested or "") / "test" / "cat" / "0000.png")
        assert np.array_equal(d.x_test[0], np.asarray(first).transpose(2, 0, 1))
    assert d.meta["skipped_bad_images"] == 0 and d.meta["image_size"] == [32, 32]
    assert ("images.tar.gz" in d.meta["md5"]) == tar


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_grayscale_folder(in_tmp, tmp_path, mode):
    path = make_image_folder(tmp_path / "img", n_train=5, n_test=2, size=20, mode=mode, ext="bmp")
    d = prep("gray", source="folder", path=str(path), val_size=3, channels=1, mean=[0.5], std=[0.25])
    check_arrays(d, 12, 3, 6, (1, 20, 20), 3)


@pytest.mark.parametrize("ext", ["jpg", "JPEG", "webp", "PNG"])
def test_image_extensions(in_tmp, tmp_path, ext):
    path = make_image_folder(tmp_path / "img", n_train=3, n_test=2, size=16, ext=ext)
    (path / "train" / "cat" / "notes.txt").write_text("ignored")
    (path / "train" / "cat" / ".hidden.png").write_bytes(b"ignored too")
    check_arrays(prep("e", source="folder", path=str(path), val_size=0), 9, 0, 6, (3, 16, 16), 3)


def test_download_cifar_converts_torchvision(in_tmp, monkeypatch):
    """The download path (torchvision's dataset replaced: no network here): NHWC -> NCHW, targets, classes."""
    import torchvision

    class FakeCIFAR10:
        filename, tgz_md5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"

        def __init__(self, root, train, download):
            assert download and root == str(paths.RAW / "cifar10")
            n = 30 if train else 10
            self.data = np.random.default_rng(n).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets, self.classes = [i % 10 for i in range(n)], CIFAR_CLASSES

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    d = prep("cifar10", val_size=5)
    check_arrays(d, 25, 5, 10, (3, 32, 32), 10)
    assert np.array_equal(d.x_test, FakeCIFAR10("data/raw/cifar10", False, True).data.transpose(0, 3, 1, 2))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_download_mnist_uses_files_already_there(in_tmp, no_network):
    """torchvision's MNIST with download=True finds the raw files in ROOT/MNIST/raw and downloads nothing."""
    make_mnist_idx(in_tmp / "cache" / "MNIST" / "raw", n_train=40, n_test=20, gz=False)
    d = prep("mnist", source="download", path=str(in_tmp / "cache"), val_size=10)
    check_arrays(d, 30, 10, 20, (1, 28, 28), 10)
    assert d.classes == [str(i) for i in range(10)]


def test_download_offline_is_a_data_error(in_tmp, no_network, capfd):
    with pytest.raises(DataError, match="cannot download mnist") as err:
        prep("mnist", source="download", path=str(in_tmp / "empty"), val_size=10)
    assert "\n" not in str(err.value) and "source: local" in str(err.value)  # one line, saying what to do
    out, errs = capfd.readouterr()
    assert out == "" and errs == "", (out, errs)  # not torchvision's mirror-by-mirror messages around it


# ---- the validation split -----------------------------------------------------------------------------------
def test_split_disjoint_and_fixed_by_seed(in_tmp, cifar_dir):
    def run(seed):
        return prep("cifar10", seed=seed, source="local", path=str(cifar_dir), val_size=30)

    a, b, c = run(0), run(0), run(1)
    rows = lambda x: {r.tobytes() for r in x}  # noqa: E731  (the synthetic images are all distinct)
    assert len(rows(a.x_train)) == 70 and len(rows(a.x_val)) == 30 and not rows(a.x_train) & rows(a.x_val)
    assert rows(a.x_train) | rows(a.x_val) == rows(cifar_original(cifar_dir / "cifar-10-batches-py")[0])
    assert np.array_equal(a.x_val, b.x_val) and np.array_equal(a.y_train, b.y_train)
    assert rows(a.x_val) != rows(c.x_val)
    assert a.meta["seed"] == 0 and c.meta["seed"] == 1


def test_val_size_too_large(in_tmp, image_folder):
    with pytest.raises(DataError, match="val_size 24 must be smaller than the 24 training images"):
        prep(source="folder", path=str(image_folder), val_size=24)


# ---- the prepared file --------------------------------------------------------------------------------------
def test_load_prepared_round_trip(in_tmp, image_folder, capsys):
    out = data.prepare(params_for("pets", source="folder", path=str(image_folder), val_size=4), "pets")
    assert "prepared pets: 20 train / 4 val / 12 test, 3 classes, 3x32x32" in capsys.readouterr().out
    assert os.listdir(out.parent) == ["pets.npz"]  # no temporary file left behind
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == sorted([*data.KEYS, "classes", "meta"])
        raw = {k: z[k] for k in z.files}
    d = data.load_prepared("pets", root=in_tmp)
    for k in data.KEYS:
        assert np.array_equal(getattr(d, k), raw[k])
    assert d.classes == ["cat", "dog", "frog"] and d.meta["dataset"] == "pets" and d.meta["path"] == str(image_folder)
    # evaluate and export read the test and validation splits only
    lean = data.load_prepared("pets", root=in_tmp, train=False)
    assert lean.x_train is None and lean.y_train is None
    for k in ("x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(lean, k), raw[k])
    assert (lean.channels, lean.image_size, lean.num_classes) == (d.channels, d.image_size, d.num_classes) == (3, 32, 3)


def test_load_prepared_missing(in_tmp):
    with pytest.raises(DataError, match=r"data/prepared/nothing.npz not found: "
                                        r"run `netpipe prepare nothing` \(or `dvc repro`\)"):
        data.load_prepared("nothing")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing_key"])
def test_load_prepared_corrupt(in_tmp, image_folder, damage):
    out = data.prepare(params_for("pets", source="folder", path=str(image_folder), val_size=4), "pets")
    if damage == "garbage":
        out.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        out.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    else:
        np.savez(out, x_train=np.zeros(3))
    with pytest.raises(DataError, match="pets.npz"):
        data.load_prepared("pets")


# ---- bad inputs ---------------------------------------------------------------------------------------------
def test_missing_path(in_tmp):
    with pytest.raises(DataError, match="nowhere/at/all not found"):
        prep("cifar10", source="local", path="nowhere/at/all")


def test_truncated_cifar_tarball(in_tmp, tmp_path):
    tgz = make_cifar_tarball(tmp_path / "cifar-10-python.tar.gz", n_train=200)
    tgz.write_bytes(tgz.read_bytes()[: tgz.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        prep("cifar10", source="local", path=str(tgz))


def test_truncated_folder_tarball(in_tmp, tmp_path):
    tgz = make_image_folder(tmp_path / "img", tar=True)
    tgz.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    with pytest.raises(DataError, match="images.tar.gz"):
        prep(source="folder", path=str(tgz), val_size=2)


@pytest.mark.parametrize("kind", ["cifar", "folder"])
def test_wrong_md5(in_tmp, tmp_path, kind):
    if kind == "cifar":
        path, fields = make_cifar_tarball(tmp_path / "cifar-10-python.tar.gz"), {"format": "cifar10", "source": "local"}
    else:
        path, fields = make_image_folder(tmp_path / "img", tar=True), {"source": "folder"}
    actual = data.md5_file(path)
    wrong = "0123456789abcdef0123456789abcdef"
    with pytest.raises(DataError, match=rf"{path.name}: md5 mismatch: expected {wrong}, got {actual}"):
        prep(path=str(path), md5=wrong, val_size=2, **fields)


def test_md5_on_a_directory(in_tmp, image_folder):
    with pytest.raises(DataError, match="is a directory"):
        prep(source="folder", path=str(image_folder), md5="0123456789abcdef0123456789abcdef", val_size=2)


def test_empty_class_folder(in_tmp, image_folder):
    for split in ("train", "test"):
        (image_folder / split / "zebra").mkdir()
    (image_folder / "test" / "zebra" / "z.png").write_bytes((image_folder / "test" / "cat" / "0000.png").read_bytes())
    with pytest.raises(DataError, match=r"train/zebra: empty class folder"):
        prep(source="folder", path=str(image_folder), val_size=2)


def test_test_classes_must_match(in_tmp, image_folder):
    (image_folder / "test" / "dog").rename(image_folder / "test" / "wolf")
    with pytest.raises(DataError, match=r"only in train: \['dog'\]; only in test: \['wolf'\]"):
        prep(source="folder", path=str(image_folder), val_size=2)


def test_no_train_folder(in_tmp, tmp_path):
    (tmp_path / "stuff" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="expected train/<class>"):
        prep(source="folder", path=str(tmp_path / "stuff"), val_size=2)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
@pytest.mark.parametrize("tar", [False, True])
def test_unreadable_image(in_tmp, tmp_path, damage, tar):
    folder = make_image_folder(tmp_path / "img")
    bad = folder / "train" / "dog" / "0003.png"
    good = bad.read_bytes()
    bad.write_bytes(b"this is no image" if damage == "garbage" else good[: len(good) // 2])
    path = folder
    if tar:
        path = tmp_path / "img.tgz"
        with tarfile.open(path, "w:gz") as tf:
            tf.add(folder, arcname="top")
    with pytest.raises(DataError, match=r"train/dog/0003.png: unreadable image"):
        prep(source="folder", path=str(path), val_size=2)
    d = prep(source="folder", path=str(path), val_size=2, on_bad_image="skip")
    check_arrays(d, 21, 2, 12, (3, 32, 32), 3)
    assert d.meta["skipped_bad_images"] == 1
    assert np.bincount(np.concatenate([d.y_train, d.y_val])).tolist() == [8, 7, 8]


def test_skipped_images_in_summary(in_tmp, image_folder, capsys):
    (image_folder / "test" / "cat" / "0001.png").write_bytes(b"")
    prep(source="folder", path=str(image_folder), val_size=2, on_bad_image="skip")
    assert "skipped 1 bad images" in capsys.readouterr().out


def test_decompression_bomb(in_tmp, image_folder, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)  # the 32x32 images (1024 pixels) now count as bombs
    with pytest.raises(DataError, match=r"train/cat/0000.png: unreadable image \(DecompressionBomb"):
        prep(source="folder", path=str(image_folder), val_size=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # beyond twice the limit: an error rather than a warning
    with pytest.raises(DataError, match=r"train/cat/0000.png: unreadable image \(DecompressionBombError"):
        prep(source="folder", path=str(image_folder), val_size=2)


def test_mismatched_image_sizes(in_tmp, image_folder):
    odd = image_folder / "train" / "frog" / "0002.png"
    Image.new("RGB", (24, 16), "red").save(odd)
    with pytest.raises(DataError, match=r"frog/0002.png: image is 24x16 but .*cat/0000.png is 32x32"):
        prep(source="folder", path=str(image_folder), val_size=2)


def rewrite_batch(path: Path, **changes):
    batch = pickle.loads(path.read_bytes(), encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    write_cifar_pickle(path, batch)


def test_cifar_label_out_of_range(in_tmp, cifar_dir):
    batch = cifar_dir / "cifar-10-batches-py" / "data_batch_3"
    labels = pickle.loads(batch.read_bytes(), encoding="bytes")[b"labels"]
    rewrite_batch(batch, labels=labels[:-1] + [10])
    with pytest.raises(DataError, match=r"data_batch_3: label 10 out of range 0..9"):
        prep("cifar10", source="local", path=str(cifar_dir))


def test_cifar_wrong_data_shape(in_tmp, cifar_dir):
    rewrite_batch(cifar_dir / "cifar-10-batches-py" / "test_batch", data=np.zeros((50, 1024), np.uint8))
    with pytest.raises(DataError, match=r"test_batch: b'data' must be a uint8 array of shape \(N, 3072\)"):
        prep("cifar10", source="local", path=str(cifar_dir))


def test_cifar_missing_batch(in_tmp, cifar_dir, tmp_path):
    (cifar_dir / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(DataError, match="data_batch_5 not found"):
        prep("cifar10", source="local", path=str(cifar_dir))
    with tarfile.open(tmp_path / "c.tar.gz", "w:gz") as tf:
        tf.add(cifar_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(DataError, match=r"c.tar.gz: archive lacks data_batch_5"):
        prep("cifar10", source="local", path=str(tmp_path / "c.tar.gz"))


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("victim", ["data_batch_2", "batches.meta"])
@pytest.mark.parametrize("tar", [False, True])
def test_malicious_pickle_is_refused(in_tmp, cifar_dir, tmp_path, victim, tar):
    marker = tmp_path / "pwned"
    (cifar_dir / "cifar-10-batches-py" / victim).write_bytes(pickle.dumps({b"data": Evil(marker)}, protocol=4))
    path = cifar_dir
    if tar:
        path = tmp_path / "cifar-10-python.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            tf.add(cifar_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(DataError, match=rf"{victim}: refusing to unpickle (posix|nt)\.system"):
        prep("cifar10", source="local", path=str(path))
    assert not marker.exists()
    pickle.loads((cifar_dir / "cifar-10-batches-py" / victim).read_bytes())  # the file was armed: plain pickle
    assert marker.exists()  # runs the command


def test_cifar_corrupt_pickle(in_tmp, cifar_dir):
    (cifar_dir / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x02}q\x00(U\x04data")
    with pytest.raises(DataError, match="data_batch_1: cannot unpickle"):
        prep("cifar10", source="local", path=str(cifar_dir))


def test_mnist_label_out_of_range(in_tmp, mnist_dir):
    raw = gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    labels = np.frombuffer(raw, np.uint8, offset=8).copy()
    labels[7] = 10
    write_idx(mnist_dir / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: label 10 out of range 0..9"):
        prep("mnist", source="local", path=str(mnist_dir))


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_truncated_idx(in_tmp, tmp_path, gz):
    folder = make_mnist_idx(tmp_path / "m", gz=gz)
    f = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    f.write_bytes(f.read_bytes()[: f.stat().st_size - 100])
    with pytest.raises(DataError, match=rf"{f.name}: .*truncated"):
        prep("mnist", source="local", path=str(folder))


def test_mnist_count_mismatch_and_bad_magic(in_tmp, mnist_dir):
    write_idx(mnist_dir / "train-labels-idx1-ubyte", np.zeros(99, np.uint8))
    with pytest.raises(DataError, match="holds 100 images but .*train-labels-idx1-ubyte.gz holds 99 labels"):
        prep("mnist", source="local", path=str(mnist_dir))
    write_idx(mnist_dir / "train-labels-idx1-ubyte", np.zeros((100, 1), np.uint8))  # an idx2 file: wrong magic
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: not an idx file"):
        prep("mnist", source="local", path=str(mnist_dir))


def test_mnist_missing_file(in_tmp, mnist_dir):
    (mnist_dir / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\(.gz\) not found"):
        prep("mnist", source="local", path=str(mnist_dir))


# ---- the shared copy of the real MNIST ----------------------------------------------------------------------
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="shared MNIST copy not present")
def test_shared_mnist(in_tmp):
    d = prep("mnist", source="local", path=str(SHARED / "mnist"), val_size=5000)
    check_arrays(d, 55000, 5000, 10000, (1, 28, 28), 10)
    train = np.bincount(np.concatenate([d.y_train, d.y_val]), minlength=10)
    test = np.bincount(d.y_test, minlength=10)
    assert train.sum() == 60000 and train.min() >= 5400 and train.max() <= 6800  # 5421 fives .. 6742 ones
    assert test.sum() == 10000 and test.min() >= 890 and test.max() <= 1140  # 892 fives .. 1135 ones
    assert d.meta["md5"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert 30 < d.x_test.mean() < 40  # MNIST's mean pixel is about 33


def test_quick_subset_spreads_over_classes():
    """Quick mode evaluates on data.spread(n, k): on class-ordered arrays (image folders) every class is there."""
    from pipeline.data import spread

    y = np.repeat(np.arange(10), 1000)  # 10,000 labels, class by class
    idx = spread(len(y), 500)
    assert len(idx) == 500 and len(set(idx.tolist())) == 500 and idx.max() < len(y)
    assert np.bincount(y[idx], minlength=10).tolist() == [50] * 10
    assert spread(7, None).tolist() == list(range(7)) and spread(7, 70).tolist() == list(range(7))


def test_jpegs_decode_to_pils_pixels_or_are_left_to_pil():
    """RGB and grey JPEGs decode through torchvision to exactly PIL's RGB pixels (one batched call, a bad one among
    them); a truncated JPEG, a CMYK one, a PNG and one over the pixel limit are left to PIL (None), which decodes
    them or names what is wrong."""
    import io

    from PIL import Image

    from pipeline.image_folder import _jpeg_size, _rgb_jpegs

    rng = np.random.default_rng(0)

    def enc(arr, fmt="JPEG", mode=None):
        buf = io.BytesIO()
        Image.fromarray(arr, mode).save(buf, fmt)
        return buf.getvalue()

    rgb, grey = enc(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), enc(rng.integers(0, 256, (32, 32), dtype=np.uint8))
    cmyk = enc(rng.integers(0, 256, (32, 32, 4), dtype=np.uint8), mode="CMYK")
    png = enc(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "PNG")
    blobs = [rgb, rgb[: len(rgb) // 2], grey, cmyk, png]
    out = _rgb_jpegs(blobs, Image.MAX_IMAGE_PIXELS)
    assert [o is None for o in out] == [False, True, False, True, True]
    for blob, arr in zip(blobs, out):
        if arr is not None:
            assert np.array_equal(arr, np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")).transpose(2, 0, 1))
    assert _rgb_jpegs([rgb], 32 * 32 - 1) == [None]  # over the limit: PIL raises its DecompressionBomb error
    # a small file whose header declares 30000x30000 is left to PIL from its header, never decoded here
    i = rgb.index(b"\xff\xc0")
    huge = rgb[:i + 5] + (30000).to_bytes(2, "big") * 2 + rgb[i + 9:]
    assert _jpeg_size(huge) == (30000, 30000) and _jpeg_size(rgb) == (32, 32)
    assert _rgb_jpegs([huge], Image.MAX_IMAGE_PIXELS) == [None]
