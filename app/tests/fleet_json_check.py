#!/usr/bin/env python3
"""fleet_json_check.py - check fields of a `scansim run --json` report.

usage: fleet_json_check.py FILE FIELD=VALUE | FIELD>=VALUE | FIELD>VALUE ...
VALUE may be @OTHER.FIELD to compare with another field of the report.
Numbers compare as numbers, `null` matches JSON null. Exit 0 if all hold, 1 otherwise
(printing every failed check and the report), 2 if the file is missing or not JSON.
"""
import json
import re
import sys


def lookup(rep, path):
    val = rep
    for part in path.split("."):
        val = val.get(part) if isinstance(val, dict) else None
    return val


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            rep = json.load(f)
    except (OSError, ValueError) as e:
        print(f"fleet_json_check: cannot read {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    bad = 0
    for cond in sys.argv[2:]:
        m = re.fullmatch(r"([A-Za-z0-9_.]+)(>=|<=|=|>|<)(.*)", cond)
        if not m:
            print(f"fleet_json_check: bad condition '{cond}'", file=sys.stderr)
            return 2
        path, op, want = m.groups()
        val = lookup(rep, path)
        if want.startswith("@"):
            want = repr(lookup(rep, want[1:]))  # another field of the report
        if want == "null":
            ok = val is None if op == "=" else False
        elif not isinstance(val, (int, float)) or isinstance(val, bool):
            ok = str(val).lower() == want.lower() if op == "=" else False
        else:
            w = float(want)
            ok = {"=": val == w, ">=": val >= w, "<=": val <= w, ">": val > w, "<": val < w}[op]
        if not ok:
            print(f"fleet_json_check: {path} is {val!r}, expected {op}{want}")
            bad += 1
    if bad:
        print(json.dumps(rep, indent=1))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
