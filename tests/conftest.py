"""Shared test settings: one torch thread per pytest worker (the suite runs with -n 2)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GENMED_QUIET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def artifacts_dir(request) -> "os.PathLike[str]":
    """A folder under test-artifacts/ that survives the run (screenshots, figures)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "test-artifacts" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def cli(capsys):
    """`cli(argv)` runs `genmed ARGV` in this process: (exit status, stdout, stderr)."""
    from genmed.cli import main

    def run(argv: list) -> tuple[int, str, str]:
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli_refuses(cli):
    """`cli_refuses(argv, needle)`: `genmed ARGV` exits 2 with one stderr line holding `needle`."""

    def check(argv: list, needle: str) -> str:
        code, _, err = cli(argv)
        err = err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and needle in err, (code, err)
        return err

    return check


@pytest.fixture
def scans(tmp_path) -> "os.PathLike[str]":
    """The docs' folder (docs/own-data.md): four patients' CT and MR DICOM from pydicom's and
    nibabel's own test files, one series with two orientations."""
    import shutil
    from pathlib import Path

    from nibabel.testing import data_path as NIB_DATA
    from pydicom.data import get_testdata_file

    ct_small = Path(get_testdata_file("CT_small.dcm"))
    dd = ct_small.parent / "dicomdirtests"
    root = tmp_path / "scans"
    shutil.copytree(dd / "77654033" / "CT2", root / "patient_a" / "ct")
    shutil.copytree(dd / "98892001", root / "patient_b")
    shutil.copytree(dd / "98892003" / "MR1", root / "patient_b" / "mr")
    (root / "patient_c").mkdir()
    shutil.copy(ct_small, root / "patient_c" / "ct.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm"), root / "patient_c" / "mr.dcm")
    (root / "patient_d").mkdir()
    for name in ("0.dcm", "1.dcm"):
        shutil.copy(Path(NIB_DATA) / name, root / "patient_d" / name)
    return root
