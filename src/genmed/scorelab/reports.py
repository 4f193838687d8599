"""One call per lab experiment: compute, then write PNG + CSV/JSON + a short text into a folder.

These are what `genmed score ...` runs; Python users call them directly. Every file is written
atomically (`genmed.fileio`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from genmed.fileio import save_figure, write_json, write_text
from genmed.scorelab.mixture import GaussianMixture
from genmed.scorelab.processes import NoiseProcess, check_process, check_time


def _stationary_points(x: np.ndarray, score: np.ndarray) -> list[float]:
    """x where the score changes sign from + to - (the density's local maxima)."""
    idx = np.where((score[:-1] > 0) & (score[1:] <= 0))[0]
    return [float(x[i] - score[i] * (x[i + 1] - x[i]) / (score[i + 1] - score[i])) for i in idx]


def write_gmm(
    out: str | Path, gm: GaussianMixture, ts: list[float], process: str = "ve", sigma: float = 1.0,
    n_grid: int = 801,
) -> dict[str, Any]:
    """Density and score of a 1-D mixture at times `ts`: gmm.png, gmm.csv, gmm.json, gmm.txt."""
    check_process(process)
    if not gm.one_d:
        from genmed.errors import UserError

        raise UserError(f"score gmm plots 1-D mixtures; got means of dimension {gm.dim}")
    if not ts:
        from genmed.errors import UserError

        raise UserError("--t needs at least one time")
    for t in ts:
        check_time(t, process)
    NoiseProcess(process, sigma=sigma)  # validates sigma
    out = Path(out)
    texts: dict[str, str] = {}  # everything is computed (and checked) before anything is written
    widest = gm.marginal(max(ts), process, sigma=sigma)
    lo = float((widest.means - 4 * widest.stds).min())
    hi = float((widest.means + 4 * widest.stds).max())
    x = np.linspace(lo, hi, n_grid)
    curves: dict[float, dict[str, np.ndarray]] = {}
    summary = []
    for t in ts:
        lp = gm.log_prob(x, t, process, sigma=sigma)
        sc = gm.score(x, t, process, sigma=sigma)
        curves[t] = {"density": np.exp(lp), "score": sc}
        if not (np.isfinite(x).all() and np.isfinite(lp).all() and np.isfinite(sc).all()):
            from genmed.errors import UserError

            raise UserError(f"t={t:g} with sigma={sigma:g}: the noised density overflows double "
                            "precision; use smaller times or sigma")
        m = gm.marginal(t, process, sigma=sigma)
        summary.append({"t": t, "component_means": m.means[:, 0].round(6).tolist(),
                        "component_variances": (m.stds[:, 0] ** 2).round(6).tolist(),
                        "peak_density": float(np.exp(lp).max()), "modes_x": _stationary_points(x, sc),
                        "max_abs_score": float(np.abs(sc).max())})
    buf = io.StringIO()
    buf.write("x," + ",".join(f"density_t{t:g},score_t{t:g}" for t in ts) + "\n")
    for i in range(len(x)):
        buf.write(f"{x[i]:.6g}," + ",".join(f"{curves[t]['density'][i]:.6g},{curves[t]['score'][i]:.6g}"
                                             for t in ts) + "\n")
    texts["gmm.csv"] = buf.getvalue()
    lines = [f"Gaussian mixture, weights {gm.weights.tolist()}, process {process}"
             + (f" (sigma = {sigma:g}: variance sigma^2 t added)" if process == "ve" else " (linear beta 0.1..20)")]
    base = summary[0]
    for s in summary:
        lines.append(f"t = {s['t']:g}: component variances {s['component_variances']}, means {s['component_means']}, "
                     f"peak density {s['peak_density']:.4f}, modes at {[round(v, 3) for v in s['modes_x']]}, "
                     f"max |score| {s['max_abs_score']:.3g}")
    if len(summary) > 1:
        last = summary[-1]
        lines.append(f"From t = {base['t']:g} to t = {last['t']:g} every component widened "
                     f"(variance {base['component_variances'][0]:.4g} -> {last['component_variances'][0]:.4g} for "
                     f"component 1), the peaks fell ({base['peak_density']:.3f} -> {last['peak_density']:.3f}) "
                     f"and the score flattened (max |score| {base['max_abs_score']:.3g} -> "
                     f"{last['max_abs_score']:.3g}): it now points gently toward the data from everywhere.")
    texts["gmm.txt"] = "\n".join(lines) + "\n"
    result = {"process": process, "sigma": sigma, "weights": gm.weights, "times": summary}
    from genmed.scorelab.plots import plot_gmm

    fig = plot_gmm(x, curves, f"{process.upper()} noise: density and score at t = {ts}")
    for name, text in texts.items():
        write_text(out / name, text)
    write_json(out / "gmm.json", result)
    save_figure(fig, out / "gmm.png")
    return result


def write_dsm(out: str | Path, cfg: Any) -> dict[str, Any]:
    """DSM vs ESM (`genmed.scorelab.dsm`): dsm.json, dsm.png, dsm.txt."""
    from genmed.scorelab.dsm import run_dsm_vs_esm
    from genmed.scorelab.plots import plot_dsm

    out = Path(out)
    res = run_dsm_vs_esm(cfg)
    s = res["summary"]
    write_json(out / "dsm.json", {"config": res["config"], "summary": s, "rows": res["rows"]})
    save_figure(plot_dsm(res), out / "dsm.png")
    text = (
        f"{s['n_theta']} parameter settings theta, one shared Monte-Carlo sample of {res['config']['n_eval']}.\n"
        f"J_mod - J_naive = {s['diff_mean']:.5f}; its spread across theta (sd) = {s['diff_spread_sd']:.2e}, "
        f"the Monte-Carlo standard error = {s['diff_se_median']:.2e} (ratio {s['spread_over_se']:.2f}): "
        f"constant in theta within Monte-Carlo error, while J_naive itself varies with sd "
        f"{s['j_naive_spread_sd']:.3g}.\n"
        f"The constant C = 1/2 E lambda (|grad log p(x_t|x_0)|^2 - |grad log p_t(x_t)|^2) = "
        f"{s['constant_c']:.5f} +- {s['constant_c_se']:.5f}: not 0, so J_naive != J_mod in value, and the two scores "
        f"differ pointwise (E lambda |a - b|^2 = {s['pointwise_gap_mean']:.4f}).\n"
        f"Trained on J_naive: relative L2 error to the analytic score {s['rel_l2_trained_naive']:.4f}; "
        f"trained on J_mod: {s['rel_l2_trained_mod']:.4f}.\n"
    )
    write_text(out / "dsm.txt", text)
    return {"summary": s, "rows": res["rows"]}


def write_manifold(out: str | Path, cfg: Any) -> dict[str, Any]:
    """Manifold experiment (`genmed.scorelab.manifold`): manifold.json, manifold.png, manifold.txt."""
    from genmed.scorelab.manifold import run_manifold
    from genmed.scorelab.plots import plot_manifold

    out = Path(out)
    res = run_manifold(cfg)
    payload = {"config": res["config"], "start": res["start"], "rows": res["rows"], "sigmas": res["sigmas"],
               "n_steps_total": res["n_steps_total"]}
    write_json(out / "manifold.json", payload)
    save_figure(plot_manifold(res), out / "manifold.png", dpi=80)
    lines = [f"Circle of radius {cfg.radius:g} in R^2; {cfg.n_samples} chains from uniform starts in "
             f"[-{cfg.box:g}, {cfg.box:g}]^2 (mean distance {res['start']['mean_distance']:.3f}); "
             f"{res['n_steps_total']} Langevin steps each."]
    for r in res["rows"]:
        lines.append(f"{r['method']}: mean distance to the circle {r['mean_distance']:.4f}, "
                     f"{100 * r['fraction_within_tol']:.1f}% within {cfg.tol:g}")
    write_text(out / "manifold.txt", "\n".join(lines) + "\n")
    return payload


def write_samplers(out: str | Path, gm: GaussianMixture, processes: list[NoiseProcess], **kw: Any) -> list[dict]:
    """Every sampler with the exact score of `gm`, for each process: samplers.json, .png, .txt."""
    from genmed.scorelab.evaluate import sampler_accuracy
    from genmed.scorelab.plots import plot_samplers

    out = Path(out)
    rows = [r for p in processes for r in sampler_accuracy(gm, p, **kw)]
    write_json(out / "samplers.json", {"weights": gm.weights, "settings": kw, "rows": rows})
    save_figure(plot_samplers(rows), out / "samplers.png")
    key = "w1" if gm.one_d else "energy_p"
    text = "\n".join(f"{r['process']} {r['sampler']}: {key} {r[key]:.4f}, mode weights {r['mode_weights']} "
                     f"(true {r['true_weights']}, max error {r['max_weight_error_points']:.2f} points)" for r in rows)
    write_text(out / "samplers.txt", text + "\n")
    return rows
