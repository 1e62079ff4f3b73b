# data fixtures
import pytest

from tests.datagen import make_cifar_batches, make_image_folder, make_mnist_idx


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty project directory (prepare writes data/prepared/ relative to the working directory)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cifar_dir(tmp_path):
    """A folder holding cifar-10-batches-py/ (100 train, 50 test images)."""
    make_cifar_batches(tmp_path / "cifar")
    return tmp_path / "cifar"


@pytest.fixture
def mnist_dir(tmp_path):
    """A folder with MNIST's four gzipped idx files (100 train, 50 test images)."""
    return make_mnist_idx(tmp_path / "mnist")


@pytest.fixture
def image_folder(tmp_path):
    """train/{cat,dog,frog}/*.png and test/... (8 and 4 RGB 32x32 images per class)."""
    return make_image_folder(tmp_path / "images")
