#!/usr/bin/env python3
"""Collects the benchmarks' JSON outputs into the one table of bench/run.sh.

Usage: bench/table.py --targets bench/targets.json --out DIR [--quick]
                      [--wardenbench FILE] [--proxy FILE] [--approvals FILE]
                      [--telemetry FILE] [--note TEXT]... [--skip SOURCE]...
Prints a markdown table (metric, warden, baseline, reference, ratio, target,
verdict), writes DIR/<UTC time>.json and DIR/latest.json, and, when gnuplot
is on PATH, DIR/<UTC time>.png and DIR/latest.png: a chart of each row's
compared quantity over its target (1 = exactly on target; the side that meets
the target is written on each bar; for a "difference" row the bar is
(warden - baseline) / allowed difference, below 0 when warden was the faster).
The ratio column of a "difference" row shows the difference, then the ratio.
Every verdict is computed here from targets.json.
Exits 1 when a row has no number (a benchmark did not run), never for speed.
Standard library only."""

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys

NUM = re.compile(r"-?\d+(?:\.\d+)?")


def first_number(cell):
    """The first number in a wardenbench cell ("8.72 / 9.02 ms" -> 8.72)."""
    if not cell or cell.startswith(("error", "skipped", "not installed")):
        return None
    m = NUM.search(cell)
    return float(m.group()) if m else None


def load(path):
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print("bench: cannot read %s: %s" % (path, e), file=sys.stderr)
        return None


def measure(t, outputs):
    """(value, baseline, {reference name: value}) for one targets row, or None."""
    src = outputs.get(t["source"])
    if src is None:
        return None
    if t["source"] == "wardenbench":
        row = next((r for r in src if r["bench"].startswith(t["row"])), None)
        if row is None:
            return None
        v = first_number(row["warden"])
        if v is None:
            return None
        base = first_number(row["baseline"].split(":", 1)[-1]) if ":" in row["baseline"] \
            else None
        refs = {}
        c = first_number(row.get("codex", ""))
        if c is not None:
            refs["codex"] = c
        return v, base, refs
    m = src.get(t["metric"])
    if m is None:
        return None
    return m["value"], m.get("baseline"), m.get("reference", {})


def fmt(x, unit=""):
    if x is None:
        return "-"
    s = ("%.3g" % x) if abs(x) < 100 else ("%.0f" % x)
    return (s + " " + unit).strip()


def verdict(ratio_or_value, op, target):
    if target is None or op is None:
        return "no target in the issue", None
    q = ratio_or_value
    ok = {"<=": q <= target, ">=": q >= target, "==": abs(q - target) < 1e-9}[op]
    return ("met" if ok else "MISSED"), ok


def build_rows(targets, outputs):
    rows = []
    for t in targets["rows"]:
        r = {"metric": t["name"], "unit": t.get("unit", ""), "op": t.get("op"),
             "target": t.get("target"), "compare": t["compare"]}
        if t.get("baseline_label"):
            r["baseline_label"] = t["baseline_label"]
        got = measure(t, outputs)
        if got is None:
            r.update(warden=None, baseline=None, reference=None, ratio=None,
                     verdict="no number" if outputs.get(t["source"]) is not None
                     else "not run")
            rows.append(r)
            continue
        v, base, refs = got
        r.update(warden=v, baseline=base, reference=refs or None)
        if t.get("show_cell") and t["source"] == "wardenbench":
            # the whole cell (its first number is the value), e.g. a sum's parts
            row = next(x for x in outputs["wardenbench"] if x["bench"].startswith(t["row"]))
            r["warden_text"] = row["warden"]
        cmp = t["compare"]
        ratio = None
        if cmp == "difference":
            # warden - baseline, in the row's unit; the ratio is shown beside it
            if base is None:
                r.update(ratio=None, difference=None, verdict="no baseline in this run")
            else:
                r["ratio"] = (v / base) if base else None
                r["difference"] = v - base
                r["verdict"], r["ok"] = verdict(v - base, t.get("op"), t.get("target"))
            rows.append(r)
            continue
        if cmp == "baseline" and base:
            ratio = v / base
        elif cmp.startswith("reference:"):
            name = cmp.split(":", 1)[1]
            if refs.get(name):
                ratio = v / refs[name]
        if cmp == "value":
            r["ratio"] = (v / base) if base else None
            r["verdict"], r["ok"] = verdict(v, t.get("op"), t.get("target"))
        elif ratio is None:
            r["ratio"] = None
            r["verdict"] = "no %s in this run" % cmp.replace("reference:", "")
        else:
            r["ratio"] = ratio
            r["verdict"], r["ok"] = verdict(ratio, t.get("op"), t.get("target"))
        rows.append(r)
    return rows


def target_text(r):
    if r["target"] is None:
        return "-"
    what = {"value": "warden", "baseline": "warden/baseline",
            "difference": "warden - baseline"}.get(
        r["compare"], "warden/" + r["compare"].replace("reference:", ""))
    unit = r["unit"] if r["compare"] in ("value", "difference") else "x"
    return "%s %s %s" % (what, r["op"], fmt(r["target"], unit).replace(" x", "x"))


def print_table(rows):
    print("| metric | warden | baseline | reference | ratio | target | verdict |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        refs = r.get("reference") or {}
        ref = ", ".join("%s %s" % (k, fmt(v, r["unit"])) for k, v in refs.items()) or "-"
        ratio = "-" if r.get("ratio") is None else "%.2fx" % r["ratio"]
        if r.get("difference") is not None:
            d = r["difference"]
            ratio = "%s%s (%s)" % ("+" if d >= 0 else "-", fmt(abs(d), r["unit"]), ratio)
        base = fmt(r["baseline"], r["unit"])
        if r["baseline"] is not None and r.get("baseline_label"):
            base = "%s: %s" % (r["baseline_label"], base)
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["metric"], r.get("warden_text") or fmt(r["warden"], r["unit"]), base, ref,
            ratio, target_text(r), r["verdict"]))


def chart(rows, png, title):
    """Bars of (compared quantity / target) for the rows that have both. For a
    "difference" row the compared quantity is warden - baseline, so its bar is
    the used share of the allowed difference (negative: warden was faster)."""
    pts = []
    for r in rows:
        if r.get("ok") is None or not r["target"]:
            continue
        q = {"value": r["warden"], "difference": r.get("difference")}.get(
            r["compare"], r["ratio"])
        if q is None:
            continue
        pts.append((r["metric"], q / r["target"], r["op"], r["ok"],
                    r["compare"] == "difference"))
    if not pts:
        return "no row has both a number and a target"
    dat = png + ".dat"
    longest = 0
    with open(dat, "w") as f:
        for i, (name, x, op, ok, diff) in enumerate(pts):
            side = ("lower is better" if op == "<=" else
                    "higher is better" if op == ">=" else "exact")
            if diff:
                side = "difference, " + side
            label = "%s (%s)" % (name.replace('"', "'"), side)
            longest = max(longest, len(label))
            f.write('%d "%s" %.6g %d\n' % (i, label, x, 1 if ok else 2))
    # gnuplot sizes the left margin for its default font, not the tics' 9 pt
    # one: long labels squeezed the plot off the canvas. The margin is set
    # here (about 5.6 px a character at 9 pt) and the canvas grows with it.
    left = 30 + int(longest * 5.6)
    # the range always holds 0 and the on-target line at 1
    xmin = min(0.0, min(p[1] for p in pts) * 1.1)
    xmax = max(1.1, max(p[1] for p in pts) * 1.05)
    width = max(1100, left + 600)
    script = """set terminal pngcairo size %d,%d noenhanced
set output '%s'
set title '%s'
set style fill solid 0.8
set boxwidth 0.6
set xlabel 'value / target (1 = on target)'
set ytics font ',9'
set lmargin at screen %.4f
set xrange [%.4g:%.4g]
set grid xtics
set yrange [-1:%d]
set arrow from 1,-1 to 1,%d nohead dt 2 lc rgb 'black'
unset key
set linetype 1 lc rgb '#2e8b57'
set linetype 2 lc rgb '#c0392b'
plot '%s' using (0):1:(0):3:($1-0.3):($1+0.3):4:ytic(2) with boxxyerror lc variable
""" % (width, 120 + 28 * len(pts), png, title.replace("'", ""), left / width,
       xmin, xmax, len(pts), len(pts), dat)
    try:
        p = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True, timeout=60)
    finally:
        os.unlink(dat)
    if p.returncode != 0 or not os.path.exists(png):
        return "gnuplot failed: " + p.stderr.decode(errors="replace").strip()[:300]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    for s in ("wardenbench", "proxy", "approvals", "telemetry"):
        ap.add_argument("--" + s, metavar="FILE")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--skip", action="append", default=[],
                    help="a benchmark left out on purpose (run.sh --only)")
    ap.add_argument("--only", default="",
                    help="run.sh --only: a row whose group (the metric's name before ':') "
                         "is not listed was left out on purpose")
    a = ap.parse_args()
    targets = load(a.targets)
    if targets is None:
        return 2
    outputs = {s: load(getattr(a, s)) for s in ("wardenbench", "proxy", "approvals", "telemetry")}
    rows = build_rows(targets, outputs)
    for r, t in zip(rows, targets["rows"]):
        groups = {g for g in a.only.split(",") if g}
        group = t["name"].split(":", 1)[0]
        if t["source"] in a.skip or (groups and "all" not in groups and group not in groups
                                     and t["source"] not in groups):
            r["verdict"] = "skipped (--only)"
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    title = "warden benchmarks, %s%s" % (now.strftime("%Y-%m-%d %H:%M UTC"),
                                         " (quick mode)" if a.quick else "")
    print(title)
    print()
    print_table(rows)
    os.makedirs(a.out, exist_ok=True)
    doc = {"time": now.isoformat(), "quick": a.quick, "host": os.uname().nodename,
           "cpus": os.cpu_count(), "notes": a.note, "rows": rows}
    path = os.path.join(a.out, stamp + ".json")
    for p in (path, os.path.join(a.out, "latest.json")):
        with open(p, "w") as f:
            json.dump(doc, f, indent=1)
    print("\nbench: table written to %s (and latest.json)" % path)
    for n in a.note:
        print("note: " + n)
    if shutil.which("gnuplot"):
        png = os.path.join(a.out, stamp + ".png")
        err = chart(rows, png, title)
        if err:
            print("bench: no chart: " + err)
        else:
            shutil.copyfile(png, os.path.join(a.out, "latest.png"))
            print("bench: chart written to %s (and latest.png)" % png)
    else:
        print("bench: no chart: gnuplot is not installed (Debian package gnuplot-nox)")
    missing = [r["metric"] for r in rows if r["verdict"] in ("no number", "not run")]
    if missing:
        print("bench: no number for: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
