import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from boresnet.config.schema import ConfigError, DataConfig, from_dict
from boresnet.training.classifier import random_translate
from boresnet.training.data import DatasetError, KMNISTDataModule, load_kmnist
from boresnet.training.device_loader import DeviceLoader
from conftest import make_kmnist


def test_split_sizes_and_disjointness(tiny_data):
    dm = KMNISTDataModule(str(tiny_data), val_size=50, batch_size=32)
    dm.setup("fit")
    assert len(dm.train_set) == 250 and len(dm.val_set) == 50
    x, _ = dm.train_set.tensors
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
    tr, va = dm.split_indices(300)
    assert set(tr.tolist()).isdisjoint(va.tolist())


def test_split_is_seeded(tiny_data):
    a = KMNISTDataModule(str(tiny_data), val_fraction=0.2, split_seed=1).split_indices(300)
    b = KMNISTDataModule(str(tiny_data), val_fraction=0.2, split_seed=1).split_indices(300)
    c = KMNISTDataModule(str(tiny_data), val_fraction=0.2, split_seed=2).split_indices(300)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    assert len(a[1]) == 60


def test_train_subset_and_test_split(tiny_data):
    dm = KMNISTDataModule(str(tiny_data), val_size=50, train_subset=100)
    dm.setup("fit")
    assert len(dm.train_set) == 100
    assert dm.test_set is None  # the tuner never loads the test split
    dm.setup("test")
    assert len(dm.test_set) == 60


def test_gzip_files_load(tmp_path):
    import gzip

    root = make_kmnist(tmp_path / "d")
    for f in (root / "KMNIST" / "raw").iterdir():
        (f.parent / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    images, labels = load_kmnist(root, train=True, download=False)
    assert images.shape == (300, 28, 28) and labels.shape == (300,)


def test_missing_files_offline_give_one_clear_error(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_kmnist(tmp_path / "nothing", train=True, download=True)
    text = str(err.value)
    assert str(tmp_path / "nothing" / "KMNIST" / "raw") in text
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        assert name in text
    assert "\n" not in text


def test_truncated_idx_names_the_file(tiny_data):
    path = tiny_data / "KMNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*truncated"):
        load_kmnist(tiny_data, train=True, download=False)


def test_garbage_idx_names_the_file(tiny_data):
    path = tiny_data / "KMNIST" / "raw" / "train-labels-idx1-ubyte"
    path.write_bytes(b"this is not an idx file")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte"):
        load_kmnist(tiny_data, train=True, download=False)


def test_empty_training_subset_and_unknown_loader_are_refused_by_the_config():
    # The typed config owns these checks (the data module trusts it): one line each.
    with pytest.raises(ConfigError, match="data.train_subset"):
        DataConfig(train_subset=0)
    with pytest.raises(
        ConfigError, match="data.loader: expected one of auto, dataloader, device, got 'gpu'"
    ):
        from_dict({"data": {"loader": "gpu"}})
    with pytest.raises(ConfigError, match="optim.schedule"):
        from_dict({"optim": {"schedule": "cosine"}})


@pytest.mark.parametrize(
    ("loader", "workers", "expected"),
    [("auto", 0, DeviceLoader), ("auto", 1, DataLoader), ("dataloader", 0, DataLoader),
     ("device", 1, DeviceLoader)],
)  # fmt: skip
def test_auto_loader_slices_in_memory_unless_workers_are_asked(
    tiny_data, loader, workers, expected
):
    dm = KMNISTDataModule(str(tiny_data), val_size=50, num_workers=workers, loader=loader)
    dm.setup("fit")
    assert isinstance(dm.train_dataloader(), expected)
    assert isinstance(dm.val_dataloader(), expected)


def test_device_loader_matches_dataloader_batches(tiny_data):
    dm = KMNISTDataModule(
        str(tiny_data), val_size=50, batch_size=32, shuffle_seed=5, loader="dataloader"
    )
    dm.setup("fit")
    x, y = dm.train_set.tensors
    device = DeviceLoader(x, y, 32, "cpu", seed=5)
    loader = dm.train_dataloader()
    for epoch in range(2):  # each pass draws a new, identical permutation on both paths
        loader.sampler.set_epoch(epoch)  # what Lightning's fit loop does every epoch
        ref = list(loader)
        got = list(device)
        assert len(ref) == len(got) == len(device) == 8
        for (xa, ya), (xb, yb) in zip(ref, got, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    first, second = list(device)[0][1], list(device)[0][1]
    assert not torch.equal(first, second)


@pytest.mark.parametrize("n, batch, world", [(10, 4, 2), (1025, 512, 2), (7, 2, 3)])
def test_device_loader_shards_exactly_like_distributed_sampler(n, batch, world):
    x, y = torch.arange(n).float(), torch.arange(n)
    for shuffle in (True, False):
        loaders = [
            DeviceLoader(x, y, batch, "cpu", seed=3, shuffle=shuffle, rank=r, world_size=world)
            for r in range(world)
        ]
        for epoch in range(2):
            counts = set()
            for rank, loader in enumerate(loaders):
                sampler = DistributedSampler(
                    range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=3
                )
                sampler.set_epoch(epoch)
                batches = list(loader)
                got = [int(v) for _, yb in batches for v in yb]
                assert got == list(sampler), (rank, epoch)
                counts.add(len(batches))
                assert len(batches) == len(loader)
            # Every rank steps the same number of times: no unmatched collective.
            assert len(counts) == 1


def test_random_translate_shapes_and_range():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 28, 28)
    out = random_translate(x, 2)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    background = (0 - 0.1918) / 0.3483
    assert float(out.min()) >= min(float(x.min()), background) - 1e-6
    assert float(out.max()) <= float(x.max()) + 1e-6
    # Every output is one of the 25 shifts of its input.
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), value=background)
    for i in range(4):
        assert any(
            torch.equal(out[i, 0], padded[i, 0, r : r + 28, c : c + 28])
            for r in range(5)
            for c in range(5)
        )
    assert torch.equal(random_translate(x, 0), x)


def test_tile_train_repeats_images_for_timing(tiny_data):
    dm = KMNISTDataModule(str(tiny_data), val_size=50, tile_train=1000)
    dm.setup("fit")
    assert len(dm.train_set) == 1000 and len(dm.val_set) == 50


def test_loaded_split_is_cached_but_sees_file_changes(tiny_data):
    from boresnet.training.data import load_normalised

    a = load_normalised(tiny_data, train=True)
    assert load_normalised(tiny_data, train=True) is a
    make_kmnist(tiny_data, n_train=120, seed=1)
    assert len(load_normalised(tiny_data, train=True)[0]) == 120


def test_a_folder_with_only_the_test_files_serves_the_test_split(tmp_path):
    import gzip
    import shutil

    root = make_kmnist(tmp_path / "full", n_test=70)
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        src = root / "KMNIST" / "raw" / name
        (flat / f"{name}.gz").write_bytes(gzip.compress(src.read_bytes()))
    images, labels = load_kmnist(flat, train=False, download=True)
    ref_images, ref_labels = load_kmnist(root, train=False, download=False)
    assert torch.equal(images, ref_images) and torch.equal(labels, ref_labels)
    with pytest.raises(DatasetError, match="KMNIST not found"):
        load_kmnist(flat, train=True, download=True)  # no training files there
    shutil.rmtree(flat)


def test_overlap_between_training_and_test_images_is_counted(tmp_path):
    from boresnet.training.data import overlap_count
    from conftest import write_idx

    clean = make_kmnist(tmp_path / "clean")
    assert overlap_count(clean, clean) == 0
    leaky = make_kmnist(tmp_path / "leaky")
    images, labels = load_kmnist(leaky, train=True, download=False)
    raw = leaky / "KMNIST" / "raw"
    write_idx(raw / "t10k-images-idx3-ubyte", images[:25].numpy())
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:25].numpy())
    assert overlap_count(leaky, leaky) == 25
    assert overlap_count(tmp_path / "missing", clean) is None


def test_gzip_only_layout_in_a_read_only_folder(tmp_path):
    import gzip
    import os

    root = make_kmnist(tmp_path / "gz")
    raw = root / "KMNIST" / "raw"
    for f in list(raw.iterdir()):
        (raw / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
    os.chmod(raw, 0o555)
    try:
        dm = KMNISTDataModule(str(root), val_size=50, download=False)
        dm.prepare_data()
        dm.setup("fit")
        dm.setup("test")
        assert len(dm.train_set) == 250 and len(dm.test_set) == 60
        assert all(p.name.endswith(".gz") for p in raw.iterdir())  # nothing extracted
    finally:
        os.chmod(raw, 0o755)
