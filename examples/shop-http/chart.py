#!/usr/bin/env python3
"""Draws load.sh's results (JSON lines) as an SVG: requests/s and database queries/s per run.

    python3 examples/shop-http/chart.py examples/shop-http/load-results.jsonl examples/shop-http/load.svg
"""
import json
import sys


def bars(runs, field, title, x0, width, colour):
    top = max(r[field] for r in runs) or 1
    out = [f'<text x="{x0}" y="20" font-size="14" font-weight="bold">{title}</text>']
    for i, r in enumerate(runs):
        y = 35 + i * 28
        w = r[field] / top * (width - 200)
        out.append(f'<text x="{x0}" y="{y + 15}" font-size="12">{r["label"]}</text>')
        out.append(f'<rect x="{x0 + 140}" y="{y}" width="{w:.1f}" height="20" fill="{colour}"/>')
        out.append(f'<text x="{x0 + 145 + w:.1f}" y="{y + 15}" font-size="11">{r[field]:,.0f}</text>')
    return out


def main():
    source, target = sys.argv[1], sys.argv[2]
    runs = [json.loads(line) for line in open(source) if line.strip()]
    height = 50 + 28 * len(runs)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height}" font-family="sans-serif">']
    parts += bars(runs, "requests_per_second", "requests/s (higher is better)", 10, 470, "#4878a8")
    parts += bars(runs, "db_queries_per_second", "database queries/s (lower is better)", 490, 470, "#c8643c")
    parts.append("</svg>")
    open(target, "w").write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
