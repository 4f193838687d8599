"""Orthogonal planes are drawn the way a radiologist reads them: superior up, true aspect."""

from __future__ import annotations

import numpy as np

from genmed.report.planes import orthogonal_planes


def _rendered(plane) -> np.ndarray:
    """The plane drawn by matplotlib alone on a bare canvas, as a grey (rows, cols) array."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(4, 4), dpi=50)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(plane.image, cmap="gray", vmin=0, vmax=1, extent=plane.extent, origin=plane.origin,
              interpolation="nearest")
    ax.set_axis_off()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())[..., 0] / 255.0
    plt.close(fig)
    return rgba


def test_the_caudal_slice_is_drawn_at_the_bottom_of_coronal_and_sagittal_planes():
    vol = np.zeros((8, 16, 16))
    vol[0] = 1.0  # slice 0: the most caudal
    axial, coronal, sagittal = orthogonal_planes(vol, (3.0, 1.5, 1.5))
    for plane in (coronal, sagittal):
        img = _rendered(plane)
        h = img.shape[0]
        assert img[-h // 10:].mean() > 0.9 and img[: h // 2].mean() < 0.1  # bright band at the bottom
    assert axial.name == "axial" and axial.image.shape == (16, 16)


def test_extents_are_in_mm_so_anisotropic_voxels_keep_their_aspect():
    axial, coronal, sagittal = orthogonal_planes(np.zeros((10, 20, 30)), (3.0, 1.0, 0.5))
    assert axial.extent == (0, 15.0, 20.0, 0)  # 30 columns x 0.5 mm, 20 rows x 1 mm, row 0 on top
    assert coronal.extent == (0, 15.0, 0, 30.0) and sagittal.extent == (0, 20.0, 0, 30.0)
    centre = orthogonal_planes(np.arange(6000.0).reshape(10, 20, 30), centre=(1, 2, 3))
    assert centre[0].image[0, 0] == 1 * 600 and centre[1].image[0, 0] == 2 * 30 and centre[2].image[0, 0] == 3
