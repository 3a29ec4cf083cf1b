"""The console report of a ``Profile`` (``lwdet profile`` prints it)."""

from __future__ import annotations

from lwdet.profile.profiles import Profile
from lwdet.units import MB


# ------------------------------------------------------------------------------------------------------ formatting
def format_profile(p: Profile, layers: bool = True) -> str:
    """A readable report: summary, breakdown by layer type, per-block table and file sizes."""
    h, w = p.imgsz
    lines = [
        f"{p.name} ({p.kind}, {p.source}) at {h}x{w}, batch 1",
        f"  params                  {p.params / 1e6:9.3f} M   (weights about {p.weights_mb['fp32']:.2f} MB fp32, "
        f"{p.weights_mb['fp16']:.2f} MB fp16)",
        f"  multiply-adds (MACs)    {p.macs / 1e6:9.1f} M   Conv2d + Linear only",
        f"  GFLOPs (2 x MACs)       {p.gflops:9.3f}     the engine's unit",
    ]
    if p.reparameterized:
        r = p.reparameterized
        lines.append(
            f"  re-parameterized        {r['blocks']:9d}     blocks folded before counting (the deployed graph; "
            f"{r['params_trained'] / 1e6:.3f} M params as trained)"
        )
    if p.engine_gflops:
        lines.append(
            f"  engine get_flops        {p.engine_gflops:9.3f}     GFLOPs; also charges BatchNorm and "
            f"extrapolates from a proxy input"
        )
    lines += [
        f"  memory-access cost      {p.memory_access_mb:9.2f} MB  ShuffleNetV2 MAC: inputs + outputs + weights per "
        f"op, fp32",
        f"  peak activation memory  {p.peak_activation_mb:9.2f} MB  live tensors during the forward (at "
        f"{p.peak_activation_at or '(root)'})",
        "",
        f"  {'by layer type':<14}{'ops':>6}{'MACs (M)':>12}{'MAC %':>8}{'mem. access (MB)':>18}{'%':>7}",
    ]
    for c, b in p.breakdown.items():
        mac_share = 100 * b["macs"] / max(p.macs, 1)
        access_share = 100 * b["memory_access_mb"] / max(p.memory_access_mb, 1e-9)
        lines.append(
            f"  {c:<14}{b['ops']:>6}{b['macs'] / 1e6:>12.1f}{mac_share:>8.1f}"
            f"{b['memory_access_mb']:>18.2f}{access_share:>7.1f}"
        )
    lines.append(
        "  (elementwise: aten pointwise ops such as activations, residual add, SE multiply; other: concat, "
        "pooling/means, upsampling, copies, softmax; BatchNorm is folded and not counted)"
    )
    if layers:
        lines += ["", f"  {'block':<16}{'type':<22}{'params':>10}{'MACs (M)':>11}{'mem. access (MB)':>18}"]
        for r in p.layers:
            lines.append(
                f"  {r['name']:<16}{r['type'][:21]:<22}{r['params']:>10}{r['macs'] / 1e6:>11.2f}"
                f"{r['memory_access_mb']:>18.2f}"
            )
    if p.files:
        lines += ["", "  files"]
        for f in p.files:
            precision = "" if f["format"] == "pt" else " fp16" if f["fp16"] else " fp32"
            lines.append(f"  {f['bytes'] / MB:9.2f} MB  {f['format']}{precision:<5}  {f['path']}")
    return "\n".join(lines)
