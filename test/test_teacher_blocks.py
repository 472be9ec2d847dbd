"""The teacher on scenes too large to hold in memory (``backend/training/teacher_blocks.py``):
read block by block near the labels, it must see what it would see in memory."""
from __future__ import annotations

import numpy as np

from fixtures_training import synthetic_reader, synthetic_scene


def _readers(tmp_path):
    """The synthetic scene read twice: held in memory, and as if too large for memory."""
    whole, truth = synthetic_reader(tmp_path)
    large, _ = synthetic_reader(tmp_path / "again", in_memory_bytes=0)
    return whole, large, truth


def test_sparse_pseudo_labels_give_the_windows_of_the_dense_array():
    from landcoverunet.backend.training.sparse_pseudo_labels import SparsePseudoLabels

    rng = np.random.default_rng(0)
    dense = np.zeros((37, 53, 4), np.float16)
    flat = np.sort(rng.choice(37 * 53, 300, replace=False))
    dense.reshape(-1, 4)[flat] = rng.random((300, 4)).astype(np.float16)
    sparse = SparsePseudoLabels(dense.shape, flat, dense.reshape(-1, 4)[flat])
    for y, x, h, w in [(0, 0, 37, 53), (5, 7, 10, 3), (30, 50, 16, 16), (36, 0, 1, 53),
                       (3, 3, 0, 5)]:
        assert np.array_equal(sparse[y:y + h, x:x + w], dense[y:y + h, x:x + w]), (y, x, h, w)


def test_block_features_equal_those_of_the_scene_in_memory(tmp_path, monkeypatch):
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import teacher_blocks
    from landcoverunet.backend.training.teacher import pixel_features

    monkeypatch.setattr(teacher_blocks, "BLOCK", 48)
    whole, large, _ = _readers(tmp_path)
    assert whole.in_memory and not large.in_memory
    pixels, labels, valid, _ = whole.whole
    near = teacher_blocks.near_labels(large, 3, 16, ConsoleProgress(quiet=True))
    assert near.counts.sum() == (labels > 0).sum() and len(near.blocks) > 4
    # the first block holds the nodata corner; a middle one has scene pixels on every side
    for block in (near.blocks[0], near.blocks[len(near.blocks) // 2]):
        x, y, w, h = block
        p, _, v, inner = teacher_blocks.read_block(large, block)
        where = np.flatnonzero(inner.ravel())
        rows, cols = np.mgrid[y:y + h, x:x + w]
        expected = pixel_features(pixels, valid, (rows * whole.width + cols).ravel())
        assert np.allclose(pixel_features(p, v, where), expected, atol=1e-4)


def test_a_scene_too_large_for_memory_is_taught_near_its_labels(tmp_path, monkeypatch):
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import teacher_blocks
    from landcoverunet.backend.training.forest_student import distil_forest
    from landcoverunet.backend.training.sparse_pseudo_labels import SparsePseudoLabels
    from landcoverunet.backend.training.teaching import teach

    monkeypatch.setattr(teacher_blocks, "BLOCK", 64)
    whole, large, truth = _readers(tmp_path)
    progress = ConsoleProgress(quiet=True)
    forest = teach([large], 3, seed=0, progress=progress, reach=64)
    assert forest is not None and isinstance(large.soft, SparsePseudoLabels)
    assert any("read in blocks near their labels" in m for m in progress.messages)
    soft = large.soft[0:large.height, 0:large.width].astype(np.float32)
    _, labels, valid, _ = whole.whole
    given = soft[..., 3] > 0
    # every unlabelled valid pixel of this small scene is near a label: all are taught
    assert given.sum() == (valid & (labels == 0)).sum()
    assert not (given & (labels > 0)).any() and not (given & ~valid).any()
    assert (soft[..., :3].argmax(-1) + 1 == truth)[given].mean() > 0.95
    network = distil_forest([large], 3, seed=0, progress=progress)
    assert network is not None
    mapped = np.asarray(network.predict(whole.whole[0][None], verbose=0))[0].argmax(-1) + 1
    assert (mapped == truth)[valid].mean() > 0.9


def test_only_blocks_within_a_window_of_a_label_are_read(tmp_path, monkeypatch):
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import teacher_blocks

    monkeypatch.setattr(teacher_blocks, "BLOCK", 16)
    _, large, _ = _readers(tmp_path)
    keep = np.zeros((large.height, large.width), np.uint8)
    keep[100:110, 200:210] = 2
    monkeypatch.setattr(large.labels, "read", lambda x, y, w, h: (keep[y:y + h, x:x + w],
                                                                  keep[y:y + h, x:x + w] * 0))
    near = teacher_blocks.near_labels(large, 3, 16, ConsoleProgress(quiet=True))
    # labelled blocks: x 192 and 208, y 96; a window of 16 reaches one block further
    assert {b[0] for b in near.blocks} == {176, 192, 208, 224}
    assert {b[1] for b in near.blocks} == {80, 96, 112}
    assert len(near.blocks) == 12 and near.counts[:, 1].sum() == 100
    near = teacher_blocks.near_labels(large, 3, 40, ConsoleProgress(quiet=True))
    assert {b[0] for b in near.blocks} == {144, 160, 176, 192, 208, 224, 240}


def test_training_on_a_scene_too_large_for_memory_keeps_the_teacher(tmp_path, monkeypatch):
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import data
    from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet

    monkeypatch.setattr(data, "IN_MEMORY_BYTES", 0)
    image, mask, _ = synthetic_scene(tmp_path)
    progress = ConsoleProgress(quiet=True)
    result = train_unet(TrainingConfig(
        images=[image], masks=[mask], output_model=str(tmp_path / "model.keras"), tile_size=64,
        batch_size=8, epochs=2, steps_per_epoch=4, patience=2, seed=0), progress)
    log = "\n".join(progress.messages + progress.warnings)
    assert "read in blocks near their labels" in log and "No teacher" not in log, log
    # the forest and the forest network are scored beside the U-Net, as for a small scene
    assert result.forest_val_miou is not None and "Forest network:" in log, log
