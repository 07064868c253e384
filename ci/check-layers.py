#!/usr/bin/env python3
"""check-layers.py - the layers of scansim point down only.

Every quoted #include of a source file must name a header of its own layer or of one
below it:

    0 firmware_core/   the firmware (fw/), portable, no OS
    1 sim/platform/    the Linux ports and the MQTT edge (sim/)
    2 sim/fleet/       many devices with a scripted operator (sim/fleet_*.h)
    3 harness/         broker control, fault proxy, backend role, scenarios, runner (hx/)
    4 app/             the scansim program

Tests and benchmarks of a layer may also start brokers with the harness's broker control
(hx/broker.h, hx/err.h): test tooling, not a dependency of the layer's code.
Prints each upward include with file:line and exits 1 when there is one.
usage: check-layers.py [REPO]
"""
import os
import re
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..'))
LAYERS = [('firmware_core', 0), ('sim/platform', 1), ('sim/fleet', 2), ('harness', 3), ('app', 4)]
NAMES = {n: prefix for prefix, n in LAYERS}
TEST_TOOLING = {'hx/broker.h', 'hx/err.h'}


def layer_of(path):
    rel = os.path.relpath(path, root)
    for prefix, n in LAYERS:
        if rel == prefix or rel.startswith(prefix + '/'):
            return n
    return None


# Where each header lives: every header below a layer, by the name it is included as
# (relative to an include/ folder, or its bare name next to its sources).
headers = {}
for prefix, n in LAYERS:
    for dirpath, _, files in os.walk(os.path.join(root, prefix)):
        for f in files:
            if not f.endswith('.h'):
                continue
            full = os.path.join(dirpath, f)
            parts = full.split(os.sep)
            if 'include' in parts:
                i = len(parts) - 1 - parts[::-1].index('include')
                headers.setdefault('/'.join(parts[i + 1:]), set()).add(n)
            headers.setdefault(f, set()).add(n)

bad = 0
checked = 0
inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
for prefix, n in LAYERS:
    for dirpath, _, files in os.walk(os.path.join(root, prefix)):
        rel_dir = os.path.relpath(dirpath, root).split(os.sep)
        tooling = any(p in ('tests', 'bench', 'testing') for p in rel_dir)
        for f in files:
            if not f.endswith(('.c', '.h')):
                continue
            path = os.path.join(dirpath, f)
            checked += 1
            with open(path, encoding='utf-8', errors='replace') as fh:
                for lineno, line in enumerate(fh, 1):
                    m = inc_re.match(line)
                    if not m:
                        continue
                    name = m.group(1)
                    if os.path.exists(os.path.join(dirpath, name)):
                        continue  # beside the file: its own module
                    owners = headers.get(name)
                    if not owners:
                        continue  # generated (commands.def) or a system header in quotes
                    if min(owners) <= n or (tooling and name in TEST_TOOLING):
                        continue
                    bad += 1
                    up = NAMES[min(owners)]
                    print(f'{os.path.relpath(path, root)}:{lineno}: includes "{name}" of {up}, '
                          f'a layer above {NAMES[n]}')
print(f'check-layers: {checked} files, {bad} upward include(s)')
sys.exit(1 if bad else 0)
