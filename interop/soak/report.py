"""Verdict and plot of a soak run (interop/soak/soak.sh): reads the samples (TSV of load.py) and
the run's summary (JSON), prints the figures and one `ok`/`FAIL` line per criterion, draws one
PNG (RSS, descriptors, ledger size and p99 latency per request kind against time) and exits
non-zero when a criterion fails.

The run is cut in thirds by sample: the first is warm-up (pools, caches and the ledger's pages
fill); the last third is compared with the middle one. Criteria:
  - zero errors, and every request kind answered at least once;
  - every kind ran at >= 80 % of its target rate (the load was what it claims);
  - memory flat: the last third's highest anonymous RSS (RssAnon: heap, stacks) exceeds the
    middle third's by at most max(SOAK_RSS_SLACK_MIB = 8 MiB, SOAK_RSS_SLACK_PCT = 10 % of it).
    File-backed RSS (RssFile) is shown, not judged: it is the binary and, on SQLite, the ledger
    read through its memory map (page cache), so it follows the ledger's size by design;
  - descriptors flat: the last third's highest count exceeds the middle third's by at most
    SOAK_FD_SLACK = 4;
  - the server ran to the end.

    python report.py SAMPLES.tsv SUMMARY.json OUT.png
"""
import csv
import json
import os
import sys

KINDS = ["acme", "est", "scep", "ocsp_get", "ocsp_post", "crl", "revoke"]
LABELS = {"acme": "ACME order", "est": "EST simpleenroll", "scep": "SCEP PKCSReq", "ocsp_get": "OCSP GET",
          "ocsp_post": "OCSP POST", "crl": "CRL fetch", "revoke": "revocation"}
RSS_SLACK_MIB = float(os.environ.get("SOAK_RSS_SLACK_MIB", "8"))
RSS_SLACK_PCT = float(os.environ.get("SOAK_RSS_SLACK_PCT", "10"))
FD_SLACK = int(os.environ.get("SOAK_FD_SLACK", "4"))


def slope_per_hour(xs, ys):
    """Least-squares slope of ys over xs (seconds), per hour."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 3600 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.1f}{unit}"


def main():
    samples_path, summary_path, png = sys.argv[1:4]
    with open(samples_path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(summary_path) as f:
        summary = json.load(f)
    results = []

    def check(what, cond):
        results.append(cond)
        print(f"  {'ok  ' if cond else 'FAIL'} {what}", flush=True)

    t = [float(r["t_s"]) for r in rows]
    rss = [int(r["rss_kib"]) / 1024 for r in rows]
    anon = [int(r["rss_anon_kib"]) / 1024 for r in rows]
    filed = [int(r["rss_file_kib"]) / 1024 for r in rows]
    fds = [int(r["fds"]) for r in rows]
    ledger = [int(r["ledger_bytes"]) / 1048576 for r in rows]
    third = len(rows) // 3

    print(f"# soak: {summary['seconds']:.0f} s, {len(rows)} samples")
    print(f"  {'kind':<17} {'target/s':>8} {'done/s':>7} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8}")
    for k in KINDS:
        s = summary["kinds"][k]
        rate = summary["rates"].get(k, 0)
        print(f"  {LABELS[k]:<17} {rate:>8.2f} {s['per_s']:>7.2f} {s['ok'] + s['errors']:>8} {s['errors']:>6} "
              f"{fmt(s['p50_ms']):>7} {fmt(s['p99_ms']):>7} {fmt(s['max_ms']):>8}")
    if third >= 1:
        mid, last = slice(third, 2 * third), slice(2 * third, len(rows))
        print(f"  RSS MiB: start {rss[0]:.1f}, end of warm-up {rss[third - 1]:.1f}, middle third max {max(rss[mid]):.1f}, "
              f"last third max {max(rss[last]):.1f}, end {rss[-1]:.1f} (anonymous {anon[-1]:.1f}, file {filed[-1]:.1f}); "
              f"after warm-up VmRSS {slope_per_hour(t[third:], rss[third:]):+.1f} MiB/h, "
              f"RssAnon {slope_per_hour(t[third:], anon[third:]):+.1f} MiB/h")
        print(f"  anonymous RSS MiB: end of warm-up {anon[third - 1]:.1f}, middle third max {max(anon[mid]):.1f}, "
              f"last third max {max(anon[last]):.1f}")
        print(f"  descriptors: start {fds[0]}, middle third max {max(fds[mid])}, last third max {max(fds[last])}, end {fds[-1]}")
        print(f"  ledger MiB: start {ledger[0]:.2f}, end {ledger[-1]:.2f} "
              f"({(ledger[-1] - ledger[0]) * 1024 / max(1, sum(summary['kinds'][k]['ok'] for k in ('acme', 'est', 'scep'))):.1f} KiB per certificate)")

    errors = sum(s["errors"] for s in summary["kinds"].values())
    server_gone = [d for k, d in summary["errors"] if k == "server"]
    for kind, detail in summary["errors"][:10]:
        print(f"  error ({kind}): {detail}")
    check("privca ran to the end", not server_gone)
    check(f"zero errors ({errors})", errors == 0)
    idle = [k for k in KINDS if summary["rates"].get(k, 0) > 0 and summary["kinds"][k]["ok"] == 0]
    check(f"every request kind answered{' (not: ' + ', '.join(idle) + ')' if idle else ''}", not idle)
    slow = [f"{k} {summary['kinds'][k]['per_s']:.2f}/{r}" for k, r in summary["rates"].items()
            if r > 0 and summary["kinds"][k]["per_s"] < 0.8 * r]
    check(f"every kind at >= 80 % of its target rate{' (not: ' + ', '.join(slow) + ')' if slow else ''}", not slow)
    if third < 1:
        check(f"enough samples to judge RSS and descriptors ({len(rows)})", False)
    else:
        grow = max(anon[last]) - max(anon[mid])
        allowed = max(RSS_SLACK_MIB, max(anon[mid]) * RSS_SLACK_PCT / 100)
        check(f"anonymous RSS flat after warm-up: last third's max {max(anon[last]):.1f} MiB vs middle third's "
              f"{max(anon[mid]):.1f} MiB ({grow:+.1f} MiB, allowed +{allowed:.1f})", grow <= allowed)
        fgrow = max(fds[last]) - max(fds[mid])
        check(f"descriptors flat after warm-up: last third's max {max(fds[last])} vs middle third's {max(fds[mid])} "
              f"({fgrow:+d}, allowed +{FD_SLACK})", fgrow <= FD_SLACK)
    try:
        plot(rows, t, rss, anon, filed, fds, ledger, third, png)
        check(f"plot written ({png})", os.path.getsize(png) > 0)
    except ImportError as e:
        check(f"plot written (matplotlib missing: {e})", False)
    sys.exit(results.count(False))


def plot(rows, t, rss, anon, filed, fds, ledger, third, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = [x / 60 for x in t]
    fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    ax[0].plot(m, rss, label="VmRSS", color="#1f6fb4")
    ax[0].plot(m, anon, label="RssAnon", color="#e8832a")
    ax[0].plot(m, filed, label="RssFile", color="#3a9a3a")
    ax[0].set_ylabel("privca RSS (MiB)")
    ax[0].set_ylim(bottom=0)
    ax[0].legend(loc="lower right", fontsize=8)
    ax[1].plot(m, fds, color="#1f6fb4")
    ax[1].set_ylabel("open descriptors")
    ax[1].set_ylim(bottom=0, top=max(fds) * 1.3 + 1)
    ax[2].plot(m, ledger, color="#1f6fb4")
    ax[2].set_ylabel("ledger (MiB)")
    ax[2].set_ylim(bottom=0)
    for k in KINDS:
        pts = [(x, float(r[f"{k}_p99_ms"])) for x, r in zip(m, rows) if r[f"{k}_p99_ms"]]
        if pts:
            ax[3].plot([p[0] for p in pts], [p[1] for p in pts], label=LABELS[k], linewidth=1)
    ax[3].set_yscale("log")
    ax[3].set_ylabel("p99 latency per 10 s (ms)")
    ax[3].set_xlabel("minutes")
    ax[3].legend(loc="upper left", fontsize=7, ncol=4)
    if third >= 1:
        for a in ax:
            for i in (third, 2 * third):
                a.axvline(m[i] - (m[1] - m[0]) / 2 if len(m) > 1 else m[i], color="grey", linestyle=":", linewidth=0.8)
    ax[0].set_title("privca soak: steady mixed load (warm-up | middle | last third)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
