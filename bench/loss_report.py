#!/usr/bin/env python3
"""Summary table and box plot for bench/loss: reads its CSV, prints the table, writes SVG and Markdown.

Python's standard library only. Quartiles are interpolated linearly between the sorted times
(statistics.quantiles, method "inclusive"). Whiskers reach the furthest time within 1.5 times
the interquartile range of the box (Tukey); times beyond are drawn as dots. Only transfers
that finished verified are in a box; failed ones are counted under it.
"""

import argparse
import csv
import math
import statistics
import sys
from collections import defaultdict
from xml.sax.saxutils import escape

TOOLS = ["anonshare", "vsftpd+curl"]
TOOL_LABELS = {"anonshare": "anonshare", "vsftpd+curl": "vsftpd + curl"}
COLORS = {"anonshare": "#2b6cb0", "vsftpd+curl": "#dd6b20"}
DIRECTIONS = ["download", "upload"]
OUTCOMES = ["completed", "resumed", "failed"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--svg", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--meta", action="append", default=[], help="KEY=VALUE for the summary")
    parser.add_argument(
        "--observed", action="append", default=[], help="LOSS=ARRIVED:DROPPED packet counts"
    )
    args = parser.parse_args()

    rows = read_rows(args.csv)
    if not rows:
        sys.exit(f"loss_report: {args.csv} has no transfers")
    stats = summarise(rows)
    observed = parse_observed(args.observed)
    table = markdown_table(stats, observed)
    print(table)
    with open(args.svg, "w") as out:
        out.write(box_plot(stats, rows))
    meta = [item.split("=", 1) for item in args.meta]
    with open(args.summary, "w") as out:
        out.write(summary_doc(table, meta))


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["seconds"] = float(row["seconds"])
    return rows


def loss_key(text):
    return float(text)


def summarise(rows):
    """Groups rows by (direction, loss, tool) and computes the box and the outcome counts."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["direction"], row["loss_pct"], row["tool"])].append(row)
    stats = {}
    for key, group in groups.items():
        ok = sorted(r["seconds"] for r in group if r["outcome"] != "failed")
        counts = {o: sum(r["outcome"] == o for r in group) for o in OUTCOMES}
        timed_out = sum(r["timed_out"] == "1" for r in group)
        stats[key] = {
            "times": ok,
            "box": box(ok),
            "counts": counts,
            "n": len(group),
            "timed_out": timed_out,
            "syn_retrans": mean_of(group, "syn_retrans"),
            "rto": mean_of(group, "rto"),
        }
    return stats


def mean_of(group, column):
    """Mean of a TCP counter column over the group; None for a CSV from before it existed."""
    values = [int(r[column]) for r in group if r.get(column, "") != ""]
    return statistics.mean(values) if values else None


def quartiles(times):
    if len(times) == 1:
        return times[0], times[0], times[0]
    q1, q2, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, q2, q3


def box(times):
    """Median, quartiles, Tukey whiskers and outliers of the sorted times, or None when empty."""
    if not times:
        return None
    q1, median, q3 = quartiles(times)
    reach = 1.5 * (q3 - q1)
    inside = [t for t in times if q1 - reach <= t <= q3 + reach]
    return {
        "q1": q1,
        "median": median,
        "q3": q3,
        # With few times the interpolated quartiles can lie beyond every time inside the fences;
        # a whisker then ends at the box.
        "low": min(min(inside), q1),
        "high": max(max(inside), q3),
        "outliers": [t for t in times if t not in inside],
    }


def parse_observed(items):
    observed = {}
    for item in items:
        loss, counts = item.split("=", 1)
        arrived, dropped = (int(n) for n in counts.split(":"))
        observed[loss] = (arrived, dropped)
    return observed


def fmt(seconds):
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def markdown_table(stats, observed):
    losses = sorted({key[1] for key in stats}, key=loss_key)
    lines = [
        "| direction | loss | tool | median s | p25 s | p75 s | max s | completed | resumed | failed "
        "| SYN retx | RTOs |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for direction in DIRECTIONS:
        for loss in losses:
            for tool in TOOLS:
                s = stats.get((direction, loss, tool))
                if s is None:
                    continue
                b = s["box"]
                cells = [fmt(b["median"]), fmt(b["q1"]), fmt(b["q3"]), fmt(max(s["times"]))] if b else ["-"] * 4
                c = s["counts"]
                failed = str(c["failed"])
                if s["timed_out"]:
                    failed += f" ({s['timed_out']} hit the cap)"
                lines.append(
                    f"| {direction} | {loss}% | {TOOL_LABELS[tool]} | "
                    + " | ".join(cells)
                    + f" | {c['completed']} | {c['resumed']} | {failed}"
                    + f" | {mean_cell(s['syn_retrans'])} | {mean_cell(s['rto'])} |"
                )
    if observed:
        lines.append("")
        lines.append("Packets that reached either end of the veth, and the share the iptables rules dropped:")
        lines.append("")
        lines.append("| loss set | packets | dropped | observed |")
        lines.append("|---:|---:|---:|---:|")
        for loss in sorted(observed, key=loss_key):
            arrived, dropped = observed[loss]
            share = 100 * dropped / arrived if arrived else 0
            lines.append(f"| {loss}% | {arrived} | {dropped} | {share:.2f}% |")
    return "\n".join(lines)


def mean_cell(value):
    return "-" if value is None else f"{value:.2f}"


def summary_doc(table, meta):
    parts = [
        "# Transfer times under packet loss: the last run",
        "",
        "Written by `bench/loss` (see [LOSS.md](LOSS.md)); the plot is [loss.svg](loss.svg), the raw",
        "times are `bench/loss-results.csv`. Times are wall-clock seconds of the whole client",
        "command, connection and verification included. *completed*: verified on the first try;",
        "*resumed*: verified after the client retried (a stderr line with `retry`); *failed*: any",
        "other end. Percentiles cover the transfers that finished. *SYN retx* and *RTOs* are the mean",
        "number per transfer of SYN or SYN-ACK retransmissions and of TCP retransmission timeouts,",
        "both ends together (kernel counters `TcpExtTCPSynRetrans`, `TcpExtTCPTimeouts`).",
        "",
        table,
        "",
        "Run:",
        "",
    ]
    parts += [f"- {key}: {value}" for key, value in meta]
    return "\n".join(parts) + "\n"


# The plot: one panel per direction, a pair of boxes per loss rate, a log time axis.
PANEL_W = 390
PANEL_H = 300
LEFT = 70
TOP = 70
GAP = 60
BOTTOM = 120


def box_plot(stats, rows):
    directions = [d for d in DIRECTIONS if any(key[0] == d for key in stats)]
    losses = sorted({key[1] for key in stats}, key=loss_key)
    times = [r["seconds"] for r in rows if r["outcome"] != "failed"] or [1.0]
    lo = 10 ** math.floor(math.log10(min(times)))
    hi = 10 ** math.ceil(math.log10(max(times)))
    if hi <= lo:
        hi = lo * 10
    width = LEFT + len(directions) * PANEL_W + (len(directions) - 1) * GAP + 30
    height = TOP + PANEL_H + BOTTOM
    size_note = workload_note(rows)

    def y(seconds):
        frac = (math.log10(seconds) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return TOP + PANEL_H * (1 - frac)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">'
        f"Transfer time under packet loss: anonshare beside vsftpd + curl</text>",
        f'<text x="{width / 2}" y="44" text-anchor="middle" fill="#444">{escape(size_note)}</text>',
    ]
    for index, direction in enumerate(directions):
        x0 = LEFT + index * (PANEL_W + GAP)
        out.append(f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#888"/>')
        out.append(
            f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 8}" text-anchor="middle" font-weight="bold">{direction}</text>'
        )
        decade = lo
        while decade <= hi * 1.0001:
            for step in (1, 2, 5):
                tick = decade * step
                if tick > hi * 1.0001:
                    break
                ty = y(tick)
                major = step == 1
                out.append(
                    f'<line x1="{x0}" x2="{x0 + PANEL_W}" y1="{ty:.1f}" y2="{ty:.1f}" '
                    f'stroke="{"#ccc" if major else "#eee"}"/>'
                )
                out.append(
                    f'<text x="{x0 - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#444">{tick:g}</text>'
                )
            decade *= 10
        if index == 0:
            cy = TOP + PANEL_H / 2
            out.append(
                f'<text transform="translate({x0 - 50},{cy}) rotate(-90)" text-anchor="middle">'
                f"seconds per transfer (log scale)</text>"
            )
        slot = PANEL_W / len(losses)
        for li, loss in enumerate(losses):
            cx = x0 + slot * (li + 0.5)
            out.append(
                f'<text x="{cx:.1f}" y="{TOP + PANEL_H + 18}" text-anchor="middle">{loss}%</text>'
            )
            for ti, tool in enumerate(TOOLS):
                s = stats.get((direction, loss, tool))
                if s is None:
                    continue
                bx = cx + (ti - 0.5) * slot * 0.38
                out += draw_box(s, bx, slot * 0.28, y, COLORS[tool])
                ok = s["n"] - s["counts"]["failed"]
                label_color = "#c53030" if s["counts"]["failed"] else "#444"
                out.append(
                    f'<text x="{bx:.1f}" y="{TOP + PANEL_H + 34}" text-anchor="middle" font-size="10" '
                    f'fill="{label_color}">{ok}/{s["n"]}</text>'
                )
        out.append(
            f'<text x="{x0 + PANEL_W / 2}" y="{TOP + PANEL_H + 52}" text-anchor="middle">'
            f"packets dropped at random, each direction</text>"
        )
    ly = TOP + PANEL_H + 78
    lx = LEFT
    for tool in TOOLS:
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="14" height="12" fill="{COLORS[tool]}" fill-opacity="0.35" stroke="{COLORS[tool]}"/>')
        out.append(f'<text x="{lx + 20}" y="{ly}">{TOOL_LABELS[tool]}</text>')
        lx += 130
    out.append(
        f'<text x="{lx}" y="{ly}" fill="#444">box: p25 to p75, line: median; whiskers: furthest time '
        f"within 1.5 IQR; dots: beyond</text>"
    )
    out.append(
        f'<text x="{LEFT}" y="{ly + 20}" fill="#444">under each box: transfers verified / run '
        f"(red when some failed; failed ones are not in the box)</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def draw_box(s, cx, w, y, color):
    b = s["box"]
    if b is None:
        return [f'<text x="{cx:.1f}" y="{TOP + PANEL_H / 2:.1f}" text-anchor="middle" fill="#c53030">none</text>']
    left, right = cx - w / 2, cx + w / 2
    top, bottom = y(b["q3"]), y(b["q1"])
    parts = [
        f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(b["high"]):.1f}" y2="{top:.1f}" stroke="{color}"/>',
        f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{bottom:.1f}" y2="{y(b["low"]):.1f}" stroke="{color}"/>',
        f'<line x1="{cx - w / 4:.1f}" x2="{cx + w / 4:.1f}" y1="{y(b["high"]):.1f}" y2="{y(b["high"]):.1f}" stroke="{color}"/>',
        f'<line x1="{cx - w / 4:.1f}" x2="{cx + w / 4:.1f}" y1="{y(b["low"]):.1f}" y2="{y(b["low"]):.1f}" stroke="{color}"/>',
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{w:.1f}" height="{max(bottom - top, 1):.1f}" '
        f'fill="{color}" fill-opacity="0.35" stroke="{color}"/>',
        f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y(b["median"]):.1f}" y2="{y(b["median"]):.1f}" '
        f'stroke="{color}" stroke-width="2.5"/>',
    ]
    for t in b["outliers"]:
        parts.append(f'<circle cx="{cx:.1f}" cy="{y(t):.1f}" r="2.5" fill="none" stroke="{color}"/>')
    return parts


def workload_note(rows):
    first = rows[0]
    n = max(int(r["round"]) for r in rows)
    mib = int(first["bytes"]) / 1048576
    return f"{mib:g} MiB per transfer, {n} transfers per box; veth between two network namespaces"


if __name__ == "__main__":
    main()
