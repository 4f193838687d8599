"""Size limits checked against file headers before anything is allocated (hostile input)."""

MAX_ELEMENTS = 1 << 30  # voxels / array elements of one image or array file (4 GiB float32)
MAX_PIXELS = 1 << 27  # pixels of one PNG/TIFF/JPEG frame (PIL's own bomb limit is ~179 M)
