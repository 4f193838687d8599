"""Render the tables of docs/applications.md from benchmarks/results/apps_*.json (between the
RESULTS markers), so the page always shows the numbers the benchmarks wrote."""

from __future__ import annotations

import json
from pathlib import Path

from genmed.fileio import write_text

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- RESULTS START -->", "<!-- RESULTS END -->"  # the 32-px history
START_256, END_256 = "<!-- RESULTS 256 START -->", "<!-- RESULTS 256 END -->"  # clinical resolution


def f(c: dict | None, d: int = 3) -> str:
    return "n/a" if c is None else f"{c['value']:.{d}f} [{c['low']:.{d}f}, {c['high']:.{d}f}]"


def load(name: str) -> dict | None:
    p = ROOT / "benchmarks" / "results" / f"apps_{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def cpu(r: dict) -> str:
    m = r["machine"]
    return f"{m['cpu_model']}{' with AMX' if m.get('amx_bf16') else ''}"


def settings(r: dict) -> str:
    """One line: the exact config, threads and wall time of the run that wrote `r`."""
    c = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in r["config"].items())
    b = r.get("benchmark", {})
    return (f"Settings: `{c}`; {b.get('torch_threads', '?')} torch thread(s), "
            f"OMP_NUM_THREADS={b.get('omp_num_threads', '?')}, wall time {b.get('wall_s', float('nan')) / 60:.1f} min "
            f"(`{b.get('script', '')}`), {cpu(r)}, torch {r['machine'].get('torch')}, monai {r['machine'].get('monai')}."
            + (f" Note: {b['note']}." if b.get("note") else ""))


def accuracy_ci(acc: float, n: int) -> str:
    """Accuracy with its exact (Clopper-Pearson) 95% CI over `n` images."""
    from scipy.stats import binomtest

    k = round(acc * n)
    c = binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{acc:.3f} [{c.low:.3f}, {c.high:.3f}]"


def bias(c: dict | None) -> str:
    return "n/a" if c is None else f"{c['value']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]"


def anomaly_crops_table(r: dict, title: str) -> list[str]:
    """One kidney-crop anomaly run: a row per detector, then its settings line."""
    t, bins = r["test"], " / ".join(r["size_bins_mm"])
    out = [f"### {title} at {r['spacing_mm']:.2f} mm ({t['n_lesion']} crops with a lesion >= "
           f"{r['config']['min_lesion_mm']:.0f} mm, {t['n_healthy']} healthy, {t['patients']} test "
           f"patients; {cpu(r)})", "",
           f"| detector | AUROC [95% CI] | AUPRC [95% CI] | best Dice | AUPRO@0.3 | AUROC by size ({bins} mm) | s |",
           "|---|---|---|---|---|---|---|"]
    for d, v in r["detectors"].items():
        px = v["pixel"] or {}
        sizes = " / ".join(f"{g['auroc']['value']:.2f}" for g in v["by_size"])
        out.append(f"| {d} | {f(v['image']['auroc'])} | {f(v['image']['auprc'])} | "
                   f"{px.get('dice', float('nan')):.3f} | {px.get('aupro', float('nan')):.3f} | {sizes} | "
                   f"{v['seconds']:.0f} |")
    return out + ["", settings(r), ""]


def clinical_tables() -> list[str]:
    """The 256-px tables (issue 16): denoising per dose with HU bias, translation with kidney
    and lesion errors."""
    out: list[str] = []
    r = load("anomaly_crops")
    if r:
        out += anomaly_crops_table(r, "Anomaly detection on kidney crops")
    r = load("anomaly_crops_gan32")
    if r:
        out += anomaly_crops_table(r, "Kidney-crop anomaly detection with the GAN chosen on validation "
                                      "patients (32 channels)")
    r = load("denoise_256")
    if r:
        for dose, d in r["doses"].items():
            out += [f"### Low-dose denoising at 256 px, {float(dose):.0%} dose ({d['n_test_images']} test "
                    f"slices; noise SD in the body {d['true_noise_hu_mean']:.1f} HU measured, "
                    f"{d['estimated_noise_hu_mean']:.1f} HU estimated from the scans; {cpu(r)})", "",
                    "| method | PSNR dB [95% CI] | SSIM [95% CI] | MAE HU [95% CI] | HU bias kidney | "
                    "HU bias lesion | s (inference) |", "|---|---|---|---|---|---|---|"]
            for m, v in d["methods"].items():
                b = d["hu_bias"][m]
                out.append(f"| {m} | {f(v['psnr_db'], 2)} | {f(v['ssim'])} | {f(v['mae_hu'], 1)} | "
                           f"{bias(b['kidney'])} | {bias(b['lesion'])} | {v['seconds']:.0f} |")
            out.append("")
        out += [settings(r), ""]
    r = load("translate_256")
    if r:
        out += [f"### Non-contrast -> contrast translation at 256 px ({r['n_test_images']} test slices; "
                f"{cpu(r)})", "",
                "| method | PSNR dB [95% CI] | SSIM [95% CI] | MAE HU [95% CI] | MAE kidney HU | "
                "HU error malignant | HU error benign | s (inference) |", "|---|---|---|---|---|---|---|---|"]
        for m, v in r["methods"].items():
            k, les = r["kidney_mae_hu"][m]["kidney"], r["lesion_bias_hu"][m]
            out.append(f"| {m} | {f(v['psnr_db'], 2)} | {f(v['ssim'])} | {f(v['mae_hu'], 1)} | "
                       f"{f(k, 1)} | {bias(les['malignant'])} | {bias(les['benign'])} | {v['seconds']:.0f} |")
        out += ["", settings(r), ""]
    return out


def tables() -> str:
    out = []
    r = load("anomaly")
    if r:
        out += [f"### Anomaly detection ({r['test']['n']} test slices, {r['test']['n_lesion']} with a lesion; "
                f"{cpu(r)})", "",
                "| detector | AUROC [95% CI] | AUPRC [95% CI] | best Dice | AUPRO@0.3 | s |", "|---|---|---|---|---|---|"]
        for d, v in r["detectors"].items():
            px = v["pixel"] or {}
            out.append(f"| {d} | {f(v['image']['auroc'])} | {f(v['image']['auprc'])} | "
                       f"{px.get('dice', float('nan')):.3f} | {px.get('aupro', float('nan')):.3f} | {v['seconds']:.0f} |")
        out += ["", settings(r), ""]
    for name, title in (("denoise", "Low-dose denoising"), ("translate", "Non-contrast -> contrast translation")):
        r = load(name)
        if not r:
            continue
        out += [f"### {title} ({r['n_test_images']} test slices, HU window level 40 / width 400; "
                f"{cpu(r)})", "",
                "| method | PSNR dB [95% CI] | SSIM [95% CI] | MAE HU [95% CI] | s |", "|---|---|---|---|---|"]
        for m, v in r["methods"].items():
            out.append(f"| {m} | {f(v['psnr_db'], 2)} | {f(v['ssim'])} | {f(v['mae_hu'], 1)} | {v['seconds']:.0f} |")
        out += ["", settings(r), ""]
    r = load("generate_from_mask")
    if r:
        out += [f"### Generation from a mask ({r['n_test']} held-out maps; {cpu(r)})", "",
                "| images | Dice kidney | Dice lesion | kind accuracy [95% CI] | noise SD HU (standard / low-dose) |",
                "|---|---|---|---|---|"]
        for k in ("real", "generated"):
            v = r[k]
            ns = " / ".join("n/a" if x is None else f"{x:.0f}" for x in v["noise_sd_hu"].values())
            out.append(f"| {k} | {v['dice']['kidney']:.3f} | {v['dice']['lesion']:.3f} | "
                       f"{accuracy_ci(v['kind_accuracy'], r['n_test'])} | {ns} |")
        out += ["", settings(r), ""]
    r = load("volumes3d")
    if r:
        c = r["config"]
        out += [f"### 3D diffusion at {c['size']}^3 ({r['device']}, {r['precision']}, "
                f"{cpu(r)})", "",
                f"training {r['train_volumes_per_s']:.2f} volumes/s ({r['train_voxels_per_s']:.3g} voxels/s), "
                f"peak memory {r['peak_memory_mib']:.0f} MiB ({r['peak_memory_kind']}), "
                f"{c['steps']} steps of batch {c['batch_size']}, final loss {r['final_loss']:.3f}.", "",
                settings(r), ""]
    return "\n".join(out) or "(no benchmark results yet: run `python benchmarks/apps_*.py`)"


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """`text` with everything between the markers `start` and `end` replaced by `body`."""
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


if __name__ == "__main__":
    page = ROOT / "docs" / "applications.md"
    text = replace_block(page.read_text(), START, END, tables())
    text = replace_block(text, START_256, END_256, "\n".join(clinical_tables()) or "(not run yet)")
    write_text(page, text)
