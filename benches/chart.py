#!/usr/bin/env python3
"""Draws the criterion results as one SVG of horizontal bars, group by group.

Usage: python3 benches/chart.py [target/criterion] [BENCHMARKS.svg]
Reads every <group>/<function>/new/{benchmark,estimates}.json that criterion wrote and draws
the median time of each function, with its ratio to cache-runtime's in the same group.
"""
import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "BENCHMARKS.svg")

groups = {}
for bench in sorted(root.glob("*/*/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    groups.setdefault(meta["group_id"], []).append((meta["function_id"], est["median"]["point_estimate"]))

ORDER = ["hit/1 thread", "hit/2 threads", "miss (new key, load and insert)",
         "redis hit/1 task", "redis hit/32 tasks", "redis miss/1 task"]
names = [g for g in ORDER if g in groups] + sorted(g for g in groups if g not in ORDER)


def fmt(ns):
    return f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.1f} ns"


W, LABEL, BAR, ROW, PAD = 900, 260, 520, 22, 14
height = PAD + sum(30 + ROW * len(groups[g]) + 10 for g in names) + PAD
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
       f'font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{height}" fill="white"/>']
y = PAD
for g in names:
    rows = groups[g]
    ours = next((t for n, t in rows if n.startswith("cache-runtime")), None)
    worst = max(t for _, t in rows)
    svg.append(f'<text x="10" y="{y + 18}" font-weight="bold" font-size="14">{g} '
               f'(median time per call; shorter is better)</text>')
    y += 30
    for name, t in rows:
        width = max(2, BAR * t / worst)
        colour = "#2b7bb9" if name.startswith("cache-runtime") else "#b0b0b0"
        ratio = f"  ({t / ours:.2f}x cache-runtime)" if ours and not name.startswith("cache-runtime") else ""
        label = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        svg.append(f'<text x="{LABEL - 8}" y="{y + 15}" text-anchor="end">{label}</text>')
        svg.append(f'<rect x="{LABEL}" y="{y + 3}" width="{width:.1f}" height="{ROW - 6}" fill="{colour}"/>')
        svg.append(f'<text x="{LABEL + width + 6:.1f}" y="{y + 15}">{fmt(t)}{ratio}</text>')
        y += ROW
    y += 10
svg.append("</svg>")
out.write_text("\n".join(svg) + "\n")
print(f"wrote {out} ({len(names)} groups)")
