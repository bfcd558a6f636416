"""The report of benches/run.sh: OUT/latest.md and one PNG plot per benchmark, from the run's
metadata (META: tab-separated `info|machine|version KEY VALUE`, `bench NAME COMMAND`,
`status NAME "REP EXIT SECONDS"`) and its result lines (RESULTS: `REP BENCHMARK SERIES METRIC
VALUE UNIT`, benches/result.sh).

Each cell is the median over the repetitions (over every value of the run when a script repeats
a measurement itself) with min–max. A ratio sets a privca series (its server starts with
`privca`) against a peer's series with the same metric and the same conditions (the `/`
segments after the server) but privca's database (`sqlite`, `postgres`), or against a peer's
series without conditions (a baseline for all); it is taken within each repetition, then its
median and min–max are shown. The plots use matplotlib's Agg backend; a plot of one colour fails the run.

    python benches/report.py META RESULTS OUT
"""

import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

PRIVCA, PEER = "#1f6fb4", "#e8832a"


def num(v):
    """A figure with about three significant digits."""
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def spread(values):
    """median (min–max) of values."""
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return num(med) + (f" ({num(lo)}–{num(hi)})" if len(values) > 1 and lo != hi else "")


def parts(series):
    server, *cond = series.split("/")
    return server, set(cond)


def read_meta(path):
    meta = {"info": {}, "machine": {}, "version": {}, "bench": {}, "status": defaultdict(list)}
    for line in Path(path).read_text().splitlines():
        kind, key, value = line.split("\t", 2)
        if kind == "status":
            rep, rc, secs = value.split()
            meta["status"][key].append((int(rep), int(rc), int(secs)))
        else:
            meta[kind][key] = value
    return meta


def read_results(path):
    """{bench: {(series, metric): {rep: [values]}}}, units {(bench, metric): unit}, orders."""
    data = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    units, series_order, metric_order = {}, defaultdict(list), defaultdict(list)
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) != 6:
            continue
        rep, bench, series, metric, value, unit = f
        try:
            v = float(value)
        except ValueError:
            continue
        data[bench][(series, metric)][int(rep)].append(v)
        units[(bench, metric)] = unit
        if series not in series_order[bench]:
            series_order[bench].append(series)
        if metric not in metric_order[bench]:
            metric_order[bench].append(metric)
    return data, units, series_order, metric_order


DATABASES = {"sqlite", "postgres"}


def comparable(cond, peer_cond):
    """A peer's series with conditions peer_cond is compared with privca's with cond."""
    return not peer_cond or (peer_cond <= cond and cond - peer_cond <= DATABASES)


def ratios(cells):
    """[(privca series, peer series, metric, [ratio per repetition])]."""
    out = []
    for (s, m), reps in cells.items():
        server, cond = parts(s)
        if not server.startswith("privca"):
            continue
        for (q, qm), qreps in cells.items():
            qserver, qcond = parts(q)
            if qm != m or qserver.startswith("privca") or not comparable(cond, qcond):
                continue
            rs = [
                statistics.median(reps[r]) / statistics.median(qreps[r])
                for r in sorted(reps)
                if r in qreps and statistics.median(qreps[r]) != 0
            ]
            if rs:
                out.append((s, q, m, rs))
    return out


def plot(bench, cells, units, series_order, metrics, path):
    """One horizontal bar chart per metric: medians with min–max whiskers."""
    heights = [0.9 + 0.32 * sum(1 for s in series_order if (s, m) in cells) for m in metrics]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(9, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, m in zip(axes[:, 0], metrics):
        names = [s for s in series_order if (s, m) in cells]
        vals = [[v for vs in cells[(s, m)].values() for v in vs] for s in names]
        med = [statistics.median(v) for v in vals]
        err = [[md - min(v) for md, v in zip(med, vals)], [max(v) - md for md, v in zip(med, vals)]]
        colours = [PRIVCA if s.startswith("privca") else PEER for s in names]
        y = range(len(names))
        ax.barh(y, med, xerr=err, color=colours, ecolor="#333333", capsize=3)
        ax.set_yticks(list(y), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{m} [{units[(bench, m)]}]", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{bench}: privca (blue) and peers (orange), median with min–max", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    colours = Image.open(path).convert("RGB").getcolors(maxcolors=1 << 16)
    if colours is not None and len(colours) < 2:
        sys.exit(f"{path}: the plot is blank")


def main():
    meta_path, results_path, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    meta = read_meta(meta_path)
    data, units, series_order, metric_order = read_results(results_path)
    info = meta["info"]
    md = [
        "# privca benchmark results (generated)",
        "",
        f"Written by `bash benches/run.sh{' --quick' if info['mode'].startswith('quick') else ''}` on "
        f"{info['date']}: every benchmark against privca and its peers in the same run, "
        f"{info['repetitions']} repetition(s), {info['databases']}. Each cell is the median with "
        "min–max over the repetitions' values; a ratio is privca's figure over the peer's within "
        "one repetition (median, min–max). Curated figures, goals and their analysis: "
        "[RESULTS.md](" + ("../" if not info["mode"].startswith("quick") else "../../") + "RESULTS.md).",
        "",
        f"Mode: {info['mode']}. privca binary: `{info['privca_binary']}`."
        + (f" Skipped: {info['skipped']}." if "skipped" in info else ""),
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in meta["machine"].items()],
        "",
        "| software | version |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in meta["version"].items()],
        "",
    ]
    for bench, command in meta["bench"].items():
        runs = meta["status"].get(bench, [])
        failed = [r for r, rc, _ in runs if rc != 0]
        secs = [s for _, _, s in runs]
        md += [f"## {bench}", "", f"`{command}` (run by `benches/run.sh`, {len(runs)} time(s), "
               f"{spread(secs) if secs else '-'} s each)" + (f"; **failed in repetition(s) {failed}**" if failed else ""), ""]
        cells = data.get(bench)
        if not cells:
            md += ["No results.", ""]
            continue
        metrics = metric_order[bench]
        md.append("| series | " + " | ".join(f"{m} [{units[(bench, m)]}]" for m in metrics) + " |")
        md.append("|---" * (len(metrics) + 1) + "|")
        for s in series_order[bench]:
            row = [spread([v for vs in cells[(s, m)].values() for v in vs]) if (s, m) in cells else "" for m in metrics]
            md.append(f"| {s} | " + " | ".join(row) + " |")
        md.append("")
        rs = ratios(cells)
        if rs:
            md += ["| privca | peer | metric | privca / peer |", "|---|---|---|---|"]
            md += [f"| {s} | {q} | {m} | {spread(r)} |" for s, q, m, r in rs]
            md.append("")
        plot(bench, cells, units, series_order[bench], metrics, out / f"{bench}.png")
        md += [f"![{bench}]({bench}.png)", ""]
    (out / "latest.md").write_text("\n".join(md))
    print(f"wrote {out / 'latest.md'} and {len(list(out.glob('*.png')))} plot(s) in {out}")


if __name__ == "__main__":
    main()
