"""Fit a GPU preset's kernel constants to a kernel-latency database (``calibrate-hw``).

The database is a folder of parquet tables as NVIDIA's aiconfigurator collects them per GPU
(``gemm_perf``, ``generation_attention_perf``, ``generation_mla_perf``, ``moe_perf``; latency in
ms). Each table fits the constants of its term of :mod:`elmoe_dse.platforms.gpu` with the same
formulas the model evaluates:

- GEMM (BF16, m <= 1024: the decode regime; the FP8 rows include a dynamic
  activation-quantization kernel per call, a floor of ~9.5 us against ~2.5 us on H200, which the
  inventory does not model): ``t0_kernel_s``, ``gemm_eta_bw_max_frac``,
  ``gemm_bw_half_bytes``, ``gemm_eta_compute_frac``;
- decode attention, GQA and MLA (BF16 KV cache, batch <= 512): ``attn_t0_s``,
  ``attn_eta_bw_frac``, ``mla_t0_s``, ``mla_eta_bw_frac``, ``attn_eta_compute_frac``;
- fused MoE (one GPU, experts whole or as the 1/tp shards a tensor-parallel layout runs, tp <=
  8; N <= 1024; ``balanced`` routing, U(N) = min(E, N k); where a database has
  no balanced rows (A100) its ``power_law_1.01`` rows with U(N) of the collector's own expert
  counts, :mod:`elmoe_dse.explore.collector_routing`): ``moe_t0_s``, ``moe_eta_compute_frac``,
  ``moe_large_m_factor`` (the tile regime at N > E) and ``moe_eta_<fmt>_frac`` per format
  present (``bfloat16`` -> bf16, ``fp8`` -> int8, ``int4_wo`` -> mxfp4: the 8-bit and 4-bit
  weight classes). A format the database lacks takes the fitted BF16 efficiency. The MoE fit
  has a held-out split: every second shape in order of bytes per expert fits, the others
  only report ``fit_error.moe_held_out`` (:func:`held_out_shapes`).

The fit is a robust (Huber, delta 0.1 in log time) Levenberg-Marquardt on log latency, over the
logarithms of the constants, kept inside each constant's [min, max], with a weak log-normal prior
(its spread a quarter of the log range) that only decides what the rows cannot. The host terms
(``kernel_gap_s``, ``step_host_s``) are not in a kernel database; see
:mod:`elmoe_dse.explore.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elmoe_dse.errors import SpecError
from elmoe_dse.explore.collector_routing import collector_unique
from elmoe_dse.explore.lm_fit import levenberg_marquardt
from elmoe_dse.platforms.gpu import attention_time_s, gemm_time_s, moe_time_s
from elmoe_dse.specs.kernels import FitError, KernelParam, KernelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.units import GB, TERA

Array = np.ndarray
HUBER_DELTA = 0.1
MS = 1e-3
#: Bytes per weight of the database's MoE formats (MXFP4-class 4-bit with E8M0 scales per 32).
MOE_DTYPES = {"bfloat16": ("bf16", 2.0), "fp8": ("int8", 1.0), "int4_wo": ("mxfp4", 4.25 / 8)}
TABLES = ("gemm_perf", "generation_attention_perf", "generation_mla_perf", "moe_perf")


@dataclass(frozen=True)
class Rows:
    """One table's rows as the term's inputs, and the latency measured, seconds."""

    table: str
    names: tuple[str, ...]
    predict: Callable[[dict[str, float]], Array]
    measured_s: Array


def read_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The kernel tables of a database folder; a missing folder or table is a one-line error."""
    root = Path(folder)
    if not root.is_dir():
        raise SpecError(
            "kernel database folder not found; give the folder of *.parquet", path=str(root)
        )
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = root / f"{name}.parquet"
        if not path.exists():
            raise SpecError(
                f"missing {name}.parquet; give an aiconfigurator data folder", path=str(root)
            )
        out[name] = pd.read_parquet(path)
    return out


def _peak_bw(spec: PlatformSpec) -> float:
    return spec.tiers[spec.main_tier].peak_bw_gb_per_s * GB


def gemm_rows(df: pd.DataFrame, spec: PlatformSpec) -> Rows:
    """BF16 GEMMs with m <= 1024 (FP8 rows add an activation-quantization kernel per call)."""
    d = df[(df.gemm_dtype == "bfloat16") & (df.m <= 1024)]
    elem = np.where(d.gemm_dtype == "fp8", 1.0, 2.0)
    m, n, k = (d[c].to_numpy(float) for c in ("m", "n", "k"))
    nbytes = elem * (n * k + m * k) + 2.0 * m * n
    ops = 2.0 * m * n * k
    peak = np.where(
        d.gemm_dtype == "fp8", spec.compute.peak_tops.w8a8, spec.compute.peak_tops.w16a16
    )
    bw = _peak_bw(spec)
    names = ("t0_kernel_s", "gemm_eta_bw_max_frac", "gemm_bw_half_bytes", "gemm_eta_compute_frac")
    return Rows("gemm", names, lambda p: gemm_time_s(p, nbytes, ops, peak * TERA, bw), _ms(d))


def _ms(d: pd.DataFrame) -> Array:
    return d.latency.to_numpy(float) * MS


def attention_rows(gqa: pd.DataFrame, mla: pd.DataFrame, spec: PlatformSpec) -> Rows:
    """GQA and MLA decode attention, BF16 KV cache, batch <= 512 (the faster MLA backend)."""
    g = gqa[(gqa.kv_cache_dtype == "bfloat16") & (gqa.batch_size <= 512)]
    ctx = g.isl.to_numpy(float) + g.step.to_numpy(float)
    b, h, hkv, hd = (
        g[c].to_numpy(float) for c in ("batch_size", "num_heads", "num_key_value_heads", "head_dim")
    )
    g_bytes, g_ops = b * ctx * 2 * hkv * hd * 2.0, 2.0 * b * ctx * h * 2 * hd
    keys = ["num_heads", "batch_size", "isl", "step", "tp_size"]
    sel = mla[(mla.kv_cache_dtype == "bfloat16") & (mla.batch_size <= 512)]
    m = sel.groupby(keys, as_index=False).agg(latency=("latency", "min"))
    mctx = m.isl.to_numpy(float) + m.step.to_numpy(float)
    mb, mh = m.batch_size.to_numpy(float), m.num_heads.to_numpy(float)
    # DeepSeek-V2/V3 MLA: kv_lora 512 + rope 64 per token; absorbed q.k over 576, v over 512
    m_bytes, m_ops = mb * mctx * 576 * 2.0, 2.0 * mb * mctx * mh * (576 + 512)
    peak, bw = spec.compute.peak_ops_per_s("w16a16"), _peak_bw(spec)

    def predict(p: dict[str, float]) -> Array:
        tg = attention_time_s(p, g_bytes, g_ops, peak, bw, mla=False)
        tm = attention_time_s(p, m_bytes, m_ops, peak, bw, mla=True)
        return np.concatenate([tg, tm])

    names = (
        "attn_t0_s",
        "attn_eta_bw_frac",
        "mla_t0_s",
        "mla_eta_bw_frac",
        "attn_eta_compute_frac",
    )
    return Rows("attention", names, predict, np.concatenate([_ms(g), _ms(m)]))


def _power_law_unique(e: Array, k: Array, n: Array, alpha: Array) -> Array:
    """Distinct experts of ``power_law_<alpha>`` rows under the collector's own draw."""
    return np.array(
        [
            collector_unique(int(ni), int(ei), int(ki), float(ai))
            for ei, ki, ni, ai in zip(e, k, n, alpha, strict=True)
        ]
    )


def held_out_shapes(d: pd.DataFrame) -> Array:
    """Rows of the held-out split: every second MoE shape (hidden, inter, E, k) in order of
    bytes per expert, so fit and held-out rows span the same range of expert sizes."""
    keys = ["hidden_size", "inter_size", "num_experts", "topk"]
    shapes = d[keys].drop_duplicates()
    shapes = shapes.assign(b=shapes.hidden_size * shapes.inter_size).sort_values(["b", *keys])
    out = set(map(tuple, shapes[keys].to_numpy()[1::2]))
    return np.array([tuple(r) in out for r in d[keys].to_numpy()], dtype=bool)


#: Widest tensor-parallel expert shard the MoE fit reads (a node's TP widths, 1-8): a shard of
#: 1/16 of an expert or less (2.4-11 MB for the shapes timed) keeps the layer's touched experts
#: in L2 between the collector's timed repeats (40-50 MB on A100/H100), faster than a decode.
MOE_MAX_TP = 8


def _moe_inputs(d: pd.DataFrame) -> tuple[Array, ...]:
    """Tokens, distinct experts, params per expert (its 1/tp shard), top-k and experts of each
    row."""
    n, hid, inter, k, e, tp = (
        d[c].to_numpy(float)
        for c in ("num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size")
    )
    skewed = (d.distribution != "balanced").to_numpy()
    alpha = np.array(
        [
            float(x.rsplit("_", 1)[1]) if s else 0.0
            for x, s in zip(d.distribution, skewed, strict=True)
        ]
    )
    unique = np.minimum(e, n * k)
    if skewed.any():
        unique[skewed] = _power_law_unique(e[skewed], k[skewed], n[skewed], alpha[skewed])
    return n, unique, 3.0 * hid * inter / tp, k, e, skewed


def moe_rows(
    df: pd.DataFrame, spec: PlatformSpec, split: str = "all", *, skew_only: bool = False
) -> tuple[Rows, tuple[str, ...]]:
    """Fused MoE on one GPU (experts whole or as 1/tp shards, tp <= :data:`MOE_MAX_TP`),
    N <= 1024, ``balanced`` routing (``power_law_1.01`` in a database
    without balanced rows, A100, at ``moe_skew_factor``), and the formats present. ``split``:
    ``all``, ``fit`` or ``held_out`` (:func:`held_out_shapes`). ``skew_only``: the
    ``power_law_1.01`` rows of a database that also has balanced ones, fitting
    ``moe_skew_factor`` alone (none otherwise)."""
    one = df[(df.moe_tp_size <= MOE_MAX_TP) & (df.moe_ep_size == 1) & (df.num_tokens <= 1024)]
    one = one[one.moe_dtype.isin(list(MOE_DTYPES))]
    has_balanced = (one.distribution == "balanced").any()
    if skew_only and not has_balanced:
        one = one.iloc[:0]
    pick = "power_law_1.01" if skew_only or not has_balanced else "balanced"
    d = one[one.distribution == pick]
    if split != "all":
        d = d[held_out_shapes(d) == (split == "held_out")]
    n, unique, params_per_expert, k, e, skewed = _moe_inputs(d)
    dtypes = d.moe_dtype.to_numpy(str)
    fmts = tuple(sorted({MOE_DTYPES[t][0] for t in dtypes}))
    bpp = np.array([MOE_DTYPES[t][1] for t in dtypes])
    nbytes, ops = unique * params_per_expert * bpp, 2.0 * n * k * params_per_expert
    peak = (
        np.where(dtypes == "fp8", spec.compute.peak_tops.w8a8, spec.compute.peak_tops.w16a16) * TERA
    )
    bw, ratio = _peak_bw(spec), n / e
    masks = {f: np.array([MOE_DTYPES[t][0] == f for t in dtypes]) for f in fmts}

    def predict(p: dict[str, float]) -> Array:
        out = np.zeros(len(dtypes))
        skew = np.where(skewed, p["moe_skew_factor"], 1.0)
        for f, m in masks.items():
            q = {**p, f"moe_eta_{f}_frac": p[f"moe_eta_{f}_frac"] * skew[m]}
            out[m] = moe_time_s(q, f, nbytes[m], ops[m], peak[m], bw, ratio[m])
        return out

    names: tuple[str, ...] = (
        "moe_t0_s",
        "moe_eta_compute_frac",
        "moe_large_m_factor",
        *(f"moe_eta_{f}_frac" for f in fmts),
    )
    table = "moe" if split != "held_out" else "moe_held_out"
    if skew_only:
        names, table = ("moe_skew_factor",), "moe_power_law"
    return Rows(table, names, predict, _ms(d)), fmts


def _huber_weights(r: Array) -> Array:
    a = np.abs(r)
    return np.where(a <= HUBER_DELTA, 1.0, HUBER_DELTA / np.maximum(a, 1e-300))


def _residuals(rows: Rows, base: dict[str, float], theta: Array) -> Array:
    p = dict(base)
    p.update({n: float(np.exp(t)) for n, t in zip(rows.names, theta, strict=True)})
    return np.log(np.maximum(rows.predict(p), 1e-12)) - np.log(rows.measured_s)


def huber_lm(
    rows: Rows, kspec: KernelSpec, base: dict[str, float], iterations: int = 60
) -> dict[str, float]:
    """Robust Levenberg-Marquardt over log constants, inside their ranges, with a weak prior."""
    prm = [kspec.params[n] for n in rows.names]
    lo = np.log([max(q.min, 1e-30) for q in prm])
    hi = np.log([q.max for q in prm])
    mu = np.log([q.prior for q in prm])
    sigma = np.maximum((hi - lo) / 4.0, 1e-6)

    def objective(t: Array) -> Array:
        r = _residuals(rows, base, t)
        return np.concatenate([np.sqrt(_huber_weights(r)) * r, (t - mu) / sigma])

    theta = levenberg_marquardt(objective, mu.copy(), lo, hi, iterations)
    return {n: float(np.exp(t)) for n, t in zip(rows.names, theta, strict=True)}


def fit_error(rows: Rows, p: dict[str, float]) -> FitError:
    """Relative error |predicted / measured - 1| of fitted constants ``p`` on ``rows``."""
    err = np.abs(rows.predict(p) / rows.measured_s - 1.0)
    return FitError(
        rows=int(err.size),
        median_abs_frac=round(float(np.median(err)), 4),
        p90_abs_frac=round(float(np.quantile(err, 0.9)), 4),
        worst_abs_frac=round(float(np.max(err)), 4),
    )


def fit_kernels(
    spec: PlatformSpec, folder: str | Path
) -> tuple[dict[str, float], dict[str, FitError], dict[str, str]]:
    """Fitted constants, the fit error per table, and what fitted each constant."""
    if spec.kernels is None:
        raise SpecError(
            "has no [kernels] section with priors; start from a shipped GPU preset", path=spec.name
        )
    kspec = spec.kernels
    tables = read_tables(folder)
    values = {n: q.prior for n, q in kspec.params.items()}
    moe, fmts = moe_rows(tables["moe_perf"], spec, "fit")
    held_out = moe_rows(tables["moe_perf"], spec, "held_out")[0]
    all_rows = [
        gemm_rows(tables["gemm_perf"], spec),
        attention_rows(tables["generation_attention_perf"], tables["generation_mla_perf"], spec),
        moe,
        moe_rows(tables["moe_perf"], spec, "fit", skew_only=True)[0],
    ]
    errors: dict[str, FitError] = {}
    fitted_on: dict[str, str] = {}
    label = Path(folder).name
    for rows in all_rows:
        if rows.measured_s.size == 0:
            continue
        values.update(huber_lm(rows, kspec, values))
        errors[rows.table] = fit_error(rows, values)
        for n in rows.names:
            fitted_on[n] = (
                f"{label} {rows.table} rows ({rows.measured_s.size}), {TABLE_DOMAIN[rows.table]}"
            )
    for fmt in ("bf16", "int8", "mxfp4"):
        if fmt not in fmts and "bf16" in fmts:
            values[f"moe_eta_{fmt}_frac"] = values["moe_eta_bf16_frac"]
            fitted_on[f"moe_eta_{fmt}_frac"] = (
                f"no {fmt}-class rows in {label} moe_perf: the fitted BF16 value"
            )
    if held_out.measured_s.size:
        errors[held_out.table] = fit_error(held_out, values)
    return values, errors, fitted_on


TABLE_DOMAIN = {
    "gemm": "BF16, m <= 1024",
    "attention": "GQA + MLA decode, BF16 KV, batch <= 512",
    "moe": (
        "fused MoE, 1 GPU, experts whole or 1/tp shards (tp <= 8), N <= 1024, balanced "
        "routing (power_law_1.01 with the collector's "
        "expert counts where there is none), every second shape by expert size (the others "
        "held out: fit_error.moe_held_out)"
    ),
    "moe_power_law": (
        "fused MoE power_law_1.01 rows (the collector's expert counts) of the fit shapes, "
        "the other MoE constants fixed at their balanced fit"
    ),
}


def _num(x: float) -> str:
    return f"{x:.6g}" if "e" in f"{x:.6g}" or "." in f"{x:.6g}" else f"{x:.6g}.0"


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _param_lines(header: str, q: KernelParam) -> list[str]:
    lines = [
        header,
        f"value = {_num(q.value)}",
        f"prior = {_num(q.prior)}",
        f"min = {_num(q.min)}",
        f"max = {_num(q.max)}",
        f'source = "{_esc(q.source)}"',
        f'fitted_on = "{_esc(q.fitted_on)}"',
    ]
    if q.fit_points:
        lines.append("fit_points = [" + ", ".join(f'"{_esc(i)}"' for i in q.fit_points) + "]")
    return [*lines, ""]


def kernels_toml(k: KernelSpec) -> str:
    """The ``[kernels]`` section of a preset file (always the file's last section)."""
    lines = ["[kernels]", f'source = "{_esc(k.source)}"', f'command = "{_esc(k.command)}"']
    lines += [f'measured_engine = "{k.measured_engine}"', ""]
    if k.engine:
        lines.insert(-1, f'engine = "{k.engine}"')
    for name, q in k.params.items():
        lines += _param_lines(f"[kernels.params.{name}]", q)
    for table, e in k.fit_error.items():
        lines += [
            f"[kernels.fit_error.{table}]",
            f"rows = {e.rows}",
            f"median_abs_frac = {_num(e.median_abs_frac)}",
            f"p90_abs_frac = {_num(e.p90_abs_frac)}",
            f"worst_abs_frac = {_num(e.worst_abs_frac)}",
            "",
        ]
    for engine, spec in k.engines.items():
        lines += [f"[kernels.engines.{engine}]", f'source = "{_esc(spec.source)}"', ""]
        for name, q in spec.params.items():
            lines += _param_lines(f"[kernels.engines.{engine}.params.{name}]", q)
    return "\n".join(lines)


def with_kernels(preset_text: str, k: KernelSpec) -> str:
    """``preset_text`` with its ``[kernels]`` section (every ``[kernels...]`` table after it)
    replaced; other tables after it (``[device_link]``) are kept, after the new section."""
    head, _, tail = preset_text.partition("\n[kernels]")
    kept = re.split(r"\n(?=\[)", "\n" + tail)
    others = [t.strip("\n") for t in kept if t.startswith("[") and not t.startswith("[kernels")]
    return "\n\n".join([head.rstrip("\n"), kernels_toml(k).rstrip("\n"), *others]) + "\n"


def calibrated(spec: PlatformSpec, folder: str | Path, command: str) -> KernelSpec:
    """The preset's ``[kernels]`` with values fitted to the database in ``folder``."""
    values, errors, fitted_on = fit_kernels(spec, folder)
    assert spec.kernels is not None  # fit_kernels raised otherwise
    params = {
        n: q.model_copy(update={"value": values[n], "fitted_on": fitted_on.get(n, q.fitted_on)})
        for n, q in spec.kernels.params.items()
    }
    return spec.kernels.model_copy(
        update={"command": command, "params": params, "fit_error": errors}
    )


def calibrate_preset(
    spec: PlatformSpec, folder: str | Path, command: str, *, fit_host: bool
) -> tuple[KernelSpec, str]:
    """Kernel terms fitted to ``folder``, then (``fit_host``) the host term and the serving
    engines' factors to the shipped measured points (:mod:`elmoe_dse.explore.validate`)."""
    from elmoe_dse.explore.validate import fit_engine_terms, fit_host_terms

    kspec = calibrated(spec, folder, command)
    if not fit_host:
        return kspec, "host terms and engine factors: kept (--no-host)"
    kspec, host = fit_host_terms(spec.model_copy(update={"kernels": kspec}), command)
    kspec, engines = fit_engine_terms(spec.model_copy(update={"kernels": kspec}))
    return kspec, f"{host}; {engines}"
