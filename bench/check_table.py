#!/usr/bin/env python3
"""bench.table_smoke: `bench/run.sh --quick` end to end, with its results in a
temporary directory. Checks that the one table was printed with a row for
every metric of bench/targets.json, that the run's JSON and latest.json hold
every metric with a number, and, when gnuplot is on PATH, that the PNG chart
was written. Also checks that every target that bench/wardenbench.c mirrors
for its own table (a row's "wardenbench_const") has the value of targets.json.
Never checks a speed. Standard library only."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))


def const_mismatches(targets):
    """targets.json is the one place for targets: wardenbench's copies must agree."""
    with open(os.path.join(here, "wardenbench.c")) as f:
        consts = {m.group(1): float(m.group(2)) for m in
                  re.finditer(r"^#define (T_[A-Z0-9_]+) ([0-9.]+)", f.read(), re.M)}
    errors = []
    for t in targets["rows"]:
        c = t.get("wardenbench_const")
        if c is None:
            continue
        if c not in consts:
            errors.append("wardenbench.c has no #define %s (targets.json row %r)" % (c, t["name"]))
        elif t.get("target") is None or abs(consts[c] - t["target"]) > 1e-9:
            errors.append("wardenbench.c: %s is %g but targets.json says %s for %r" %
                          (c, consts[c], t.get("target"), t["name"]))
    return errors


def main():
    targets = json.load(open(os.path.join(here, "targets.json")))
    names = [t["name"] for t in targets["rows"]]
    const_errors = const_mismatches(targets)
    with tempfile.TemporaryDirectory(prefix="warden-bench-table-") as d:
        res = os.path.join(d, "results")
        env = dict(os.environ, WARDEN_BENCH_RESULTS=res, WARDEN_BENCH_NO_GNUPLOT="1",
                   WARDEN_BENCH_SKIP_CODEX="1", WARDEN_BENCH_QUICK="1", TMPDIR=d)
        p = subprocess.run(["bash", os.path.join(here, "run.sh"), "--quick"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode(errors="replace")
        sys.stdout.write(out)
        errors = list(const_errors)
        if p.returncode != 0:
            errors.append("run.sh exited with %d" % p.returncode)
        if "| metric | warden | baseline | reference | ratio | target | verdict |" not in out:
            errors.append("the table's header is missing from the output")
        for n in names:
            if "| %s |" % n not in out:
                errors.append("no table row for %r" % n)
        files = sorted(os.listdir(res)) if os.path.isdir(res) else []
        runs = [f for f in files if f.endswith(".json") and f != "latest.json"]
        if len(runs) != 1 or "latest.json" not in files:
            errors.append("want one run JSON and latest.json in results, got %s" % files)
        else:
            for f in (runs[0], "latest.json"):
                doc = json.load(open(os.path.join(res, f)))
                rows = {r["metric"]: r for r in doc["rows"]}
                for n in names:
                    r = rows.get(n)
                    if r is None or not isinstance(r.get("warden"), (int, float)):
                        errors.append("%s: no number for %r (%s)" % (f, n, r))
                    elif not r.get("verdict"):
                        errors.append("%s: no verdict for %r" % (f, n))
        if shutil.which("gnuplot"):
            pngs = [f for f in files if f.endswith(".png")]
            if len(pngs) != 2 or "latest.png" not in pngs:
                errors.append("gnuplot is installed but the chart is missing: %s" % files)
            else:
                with open(os.path.join(res, "latest.png"), "rb") as f:
                    if f.read(8) != b"\x89PNG\r\n\x1a\n":
                        errors.append("latest.png is not a PNG")
        else:
            print("check_table: gnuplot not installed: the chart is not checked")
    for e in errors:
        print("FAIL: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
