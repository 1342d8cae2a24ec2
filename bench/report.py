"""Turn a saved pytest-benchmark run (``--benchmark-json``) into a markdown report.

Usage::

    python bench/report.py RESULTS.json [-o bench/results/HOST-DATE.md] [--note TEXT]

The report gives the machine (CPU, GPU or why none, versions, the copy bandwidths measured in
the run), then one table per benchmark group: each contestant's median, interquartile range,
rounds, its speed-up over the course's code (course median / contestant median), and, where
the benchmark recorded them, its effective bandwidth and fraction of the copy bandwidth, its
time relative to a plain copy of the same bytes, its final cost, its GFLOP/s. Without ``-o``
it writes ``bench/results/<host-kind>-<date>.md``, where the host kind is ``cpu`` or the GPU's
name; the JSON is copied beside the report unless it is there already.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# Groups are printed in the order of the brief, whatever order pytest ran the files in.
GROUP_ORDER = (
    "mini-batch partition",
    "forward + backward",
    "gd step",
    "momentum step",
    "rmsprop step",
    "adam step",
    "experiment",
    "train step",
)


# ---------------------------------------------------------------------- formatting
def fmt_time(seconds: float | None) -> str:
    """A duration with three significant digits in ns, µs, ms or s."""
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3g}x" if x < 100 else f"{x:,.0f}x"


def fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# -------------------------------------------------------------------------- machine
def host_kind(data: dict) -> str:
    """``cpu``, or the GPU's name as a slug (``nvidia-h100-80gb-hbm3``)."""
    gpu = data.get("machine_info", {}).get("xpopt", {}).get("gpu") or {}
    return slug(gpu["device"]) if "device" in gpu else "cpu"


def machine_section(data: dict) -> list[str]:
    mi = data.get("machine_info", {})
    xi = mi.get("xpopt", {})
    cpu = xi.get("cpu", {})
    lines = ["## Machine", ""]
    brand = (mi.get("cpu") or {}).get("brand_raw") or cpu.get("device") or mi.get("processor")
    lines.append(
        f"- CPU: {brand}, {cpu.get('cores', '?')} logical cores "
        f"({mi.get('system', '')} {mi.get('release', '')}, {mi.get('machine', '')})"
    )
    lines.append(
        f"- Python {mi.get('python_version', cpu.get('python', '?'))}, "
        f"NumPy {cpu.get('numpy', '?')}, xpopt {xi.get('xpopt', '?')}"
    )
    for pool in xi.get("blas") or []:
        lines.append(
            f"- {pool.get('user_api')}: {pool.get('internal_api')} {pool.get('version')}, "
            f"{pool.get('num_threads')} threads, kernel {pool.get('architecture')}"
        )
    gpu = xi.get("gpu") or {}
    if "device" in gpu:
        mem = gpu.get("memory_bytes")
        lines.append(
            f"- GPU: {gpu['device']}, {fmt_bytes(mem) if mem else '?'}, compute capability "
            f"{gpu.get('compute_capability')}, CUDA runtime {gpu.get('cuda_runtime')}, "
            f"driver {gpu.get('cuda_driver')}, CuPy {gpu.get('cupy')}"
        )
    else:
        lines.append(f"- GPU: none usable ({gpu.get('unavailable', 'not recorded')})")
    torch = xi.get("torch")
    if torch:
        lines.append(
            f"- PyTorch {torch['version']}: {torch['threads']} CPU threads by default, "
            f"CUDA {'available' if torch.get('cuda_available') else 'not available'}"
        )
    else:
        lines.append("- PyTorch: not installed (its contestants were skipped)")
    for device, copy in (xi.get("copy_bandwidth") or {}).items():
        lines.append(
            f"- Copy bandwidth ({device}), measured in this run: "
            f"{copy['bytes_per_s'] / 1e9:.1f} GB/s read + written ({copy['how']})"
        )
    env = xi.get("env") or {}
    if env:
        lines.append("- Environment: " + ", ".join(f"`{k}={v}`" for k, v in env.items()))
    commit = data.get("commit_info") or {}
    if commit.get("id"):
        dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
        lines.append(
            f"- Commit {commit['id'][:12]}{dirty}"
            f", run {data.get('datetime', '?')}, pytest-benchmark {data.get('version', '?')}"
        )
    if xi.get("quick"):
        lines.append(
            "- **QUICK smoke run (XPOPT_BENCH_QUICK=1): tiny sizes, one round; the "
            "figures mean nothing.**"
        )
    return lines + [""]


# --------------------------------------------------------------------------- groups
def group_rank(name: str) -> tuple:
    """Sort key: the brief's order of operations, then the course's order of optimizers,
    then size."""
    kind = next(
        (i for i, prefix in enumerate(GROUP_ORDER) if name.startswith(prefix)), len(GROUP_ORDER)
    )
    optimizer = next(
        (
            i
            for i, word in enumerate(("gd", "momentum", "rmsprop", "adam"))
            if re.search(rf"\b{word}\b", name)
        ),
        -1,
    )
    size = re.search(r"(\d+)([KM]) float32 parameters", name)
    count = int(size.group(1)) * (2**20 if size.group(2) == "M" else 2**10) if size else 0
    return (kind, optimizer, count, name)


def group_table(benchmarks: list[dict]) -> list[str]:
    """One markdown table for the benchmarks of one group."""
    base = next((b for b in benchmarks if b["extra_info"].get("baseline")), None)
    base_median = base["stats"]["median"] if base else None
    copies = {
        b["extra_info"].get("device"): b["stats"]["median"]
        for b in benchmarks
        if b["extra_info"].get("reference") == "copy"
    }
    has = lambda key: any(key in b["extra_info"] for b in benchmarks)  # noqa: E731

    header = ["Contestant", "Device", "Median", "IQR", "Rounds x iter."]
    header.append("Speed-up vs course" if base else "vs course")
    if has("bandwidth_GBps"):
        header += ["GB/s", "% of copy"]
    if copies:
        header.append("Time / copy")
    if has("GFLOPs"):
        header.append("GFLOP/s")
    if has("final_cost"):
        header += ["Final cost", "Δ vs course"]
    rows = [header, ["---"] * 2 + ["---:"] * (len(header) - 2)]
    for b in sorted(benchmarks, key=lambda b: b["stats"]["median"]):
        info, stats = b["extra_info"], b["stats"]
        name = info.get("contestant", b["name"])
        if info.get("baseline"):
            name = f"**{name}** (baseline)"
        row = [
            name,
            info.get("device", "?"),
            fmt_time(stats["median"]),
            fmt_time(stats["iqr"]) if stats["rounds"] > 1 else "—",
            f"{stats['rounds']} x {stats.get('iterations', 1)}",
            fmt_ratio(base_median / stats["median"]) if base_median else "—",
        ]
        if has("bandwidth_GBps"):
            bw, frac = info.get("bandwidth_GBps"), info.get("copy_fraction")
            row += [
                f"{bw:.2f}" if bw is not None else "—",
                f"{100 * frac:.0f}%" if frac is not None else "—",
            ]
        if copies:
            ref = copies.get(info.get("device"))
            row.append(fmt_ratio(stats["median"] / ref) if ref else "—")
        if has("GFLOPs"):
            row.append(f"{info['GFLOPs']:.1f}" if "GFLOPs" in info else "—")
        if has("final_cost"):
            cost, delta = info.get("final_cost"), info.get("final_cost_vs_course")
            row += [
                f"{cost:.12f}" if cost is not None else "—",
                "—" if delta is None else ("0 (identical)" if delta == 0 else f"{delta:+.2e}"),
            ]
        rows.append(row)
    return ["| " + " | ".join(r) + " |" for r in rows]


def skipped_section(data: dict) -> list[str]:
    skipped = data.get("xpopt_skipped") or []
    if not skipped:
        return []
    by_reason: dict[str, list[str]] = defaultdict(list)
    for s in skipped:
        by_reason[s["reason"]].append(s["nodeid"].split("::")[-1])
    lines = ["## Not measured in this run", ""]
    for reason, ids in by_reason.items():
        lines.append(f"- {reason} ({len(ids)}): " + ", ".join(f"`{i}`" for i in ids))
    return lines + [""]


def render(data: dict, note: str | None = None) -> str:
    """The whole markdown report for one loaded pytest-benchmark JSON."""
    date = (data.get("datetime") or "")[:10]
    lines = [f"# xpopt benchmarks: {host_kind(data)}, {date}", ""]
    if note:
        lines += [note, ""]
    lines += machine_section(data)
    lines += [
        "How to read: times are the median over the rounds (a round is the mean of its "
        "iterations); IQR is the interquartile range of the rounds. *Speed-up vs course* is the "
        "course code's median divided by the contestant's (above 1: faster than the course's "
        "NumPy code, measured side by side in this run). *GB/s* is the bytes an update must move "
        "(each array read or written once) divided by the median; *% of copy* compares it with "
        "a plain copy on the same device measured in the same run. *Time / copy* divides by a "
        "copy of the same bytes on the same device.",
        "",
    ]
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in data.get("benchmarks", []):
        groups[b.get("group") or b["name"]].append(b)
    for name in sorted(groups, key=group_rank):
        lines += [f"### {name}", ""] + group_table(groups[name]) + [""]
    lines += skipped_section(data)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a pytest-benchmark JSON (--benchmark-json)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the markdown file (default: bench/results/<host-kind>-<date>.md)",
    )
    parser.add_argument(
        "--note", help="a paragraph put under the title (e.g. the machine was shared)"
    )
    parser.add_argument(
        "--no-copy-json", action="store_true", help="do not copy the JSON beside the report"
    )
    args = parser.parse_args(argv)

    data: dict[str, Any] = json.loads(args.results.read_text(encoding="utf-8"))
    if not data.get("benchmarks"):
        print(
            f"{args.results}: no benchmark results (was the run made with --benchmark-disable?)",
            file=sys.stderr,
        )
        return 1
    output = (
        args.output or RESULTS / f"{host_kind(data)}-{(data.get('datetime') or 'undated')[:10]}.md"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(data, args.note), encoding="utf-8")
    beside = output.with_suffix(".json")
    if not args.no_copy_json and beside.resolve() != args.results.resolve():
        shutil.copyfile(args.results, beside)
    print(f"wrote {output}" + ("" if args.no_copy_json else f" (results: {beside})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
