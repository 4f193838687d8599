"""Render the tables of docs/applications.md from benchmarks/results/apps_*.json (between the
RESULTS markers), so the page always shows the numbers the benchmarks wrote."""

from __future__ import annotations

import json
from pathlib import Path

from genmed.fileio import write_text

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- RESULTS START -->", "<!-- RESULTS END -->"


def f(c: dict | None, d: int = 3) -> str:
    return "n/a" if c is None else f"{c['value']:.{d}f} [{c['low']:.{d}f}, {c['high']:.{d}f}]"


def load(name: str) -> dict | None:
    p = ROOT / "benchmarks" / "results" / f"apps_{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def tables() -> str:
    out = []
    r = load("anomaly")
    if r:
        out += [f"### Anomaly detection ({r['test']['n']} test slices, {r['test']['n_lesion']} with a lesion; "
                f"{r['machine']['cpu_model']})", "",
                "| detector | AUROC [95% CI] | AUPRC [95% CI] | best Dice | AUPRO@0.3 | s |", "|---|---|---|---|---|---|"]
        for d, v in r["detectors"].items():
            px = v["pixel"] or {}
            out.append(f"| {d} | {f(v['image']['auroc'])} | {f(v['image']['auprc'])} | "
                       f"{px.get('dice', float('nan')):.3f} | {px.get('aupro', float('nan')):.3f} | {v['seconds']:.0f} |")
        out.append("")
    for name, title in (("denoise", "Low-dose denoising"), ("translate", "Non-contrast -> contrast translation")):
        r = load(name)
        if not r:
            continue
        out += [f"### {title} ({r['n_test_images']} test slices, HU window level 40 / width 400; "
                f"{r['machine']['cpu_model']})", "",
                "| method | PSNR dB [95% CI] | SSIM [95% CI] | MAE HU [95% CI] | s |", "|---|---|---|---|---|"]
        for m, v in r["methods"].items():
            out.append(f"| {m} | {f(v['psnr_db'], 2)} | {f(v['ssim'])} | {f(v['mae_hu'], 1)} | {v['seconds']:.0f} |")
        out.append("")
    r = load("generate_from_mask")
    if r:
        out += [f"### Generation from a mask ({r['n_test']} held-out maps)", "",
                "| images | Dice kidney | Dice lesion | kind accuracy | noise SD HU (standard / low-dose) |",
                "|---|---|---|---|---|"]
        for k in ("real", "generated"):
            v = r[k]
            ns = " / ".join("n/a" if x is None else f"{x:.0f}" for x in v["noise_sd_hu"].values())
            out.append(f"| {k} | {v['dice']['kidney']:.3f} | {v['dice']['lesion']:.3f} | "
                       f"{v['kind_accuracy']:.3f} | {ns} |")
        out.append("")
    r = load("volumes3d")
    if r:
        c = r["config"]
        out += [f"### 3D diffusion at {c['size']}^3 ({r['device']}, {r['precision']}, "
                f"{r['machine']['cpu_model']})", "",
                f"training {r['train_volumes_per_s']:.2f} volumes/s ({r['train_voxels_per_s']:.3g} voxels/s), "
                f"peak memory {r['peak_memory_mib']:.0f} MiB ({r['peak_memory_kind']}), "
                f"{c['steps']} steps of batch {c['batch_size']}, final loss {r['final_loss']:.3f}.", ""]
    return "\n".join(out) or "(no benchmark results yet: run `python benchmarks/apps_*.py`)"


if __name__ == "__main__":
    page = ROOT / "docs" / "applications.md"
    text = page.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(page, f"{head}{START}\n{tables()}\n{END}{tail}")
