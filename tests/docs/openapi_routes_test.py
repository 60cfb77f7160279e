#!/usr/bin/python3
"""docs/openapi.yaml and the routes edge-os serves (its route table) name the
same methods on the same paths: the reference cannot drift from the server."""
import itertools
import re
import subprocess
import sys

import yaml

root = sys.argv[1]
spec = yaml.safe_load(open(f"{root}/docs/openapi.yaml"))
documented = {(m.upper(), "/api/v1" + p) for p, ops in spec["paths"].items()
              for m in ops if m in ("get", "post", "put", "delete")}

served = set()
# The server's own route table (edge-os --print-routes), not its source text.
table = subprocess.run([sys.argv[2], "--print-routes"], check=True, capture_output=True, text=True).stdout
for line in table.splitlines():
    method, pattern = line.split(" ", 1)
    if not pattern.startswith("/api/"):
        continue
    # ([^/]+) is an id; (a|b) is one route per alternative
    parts = re.split(r"(\([^)]*\))", pattern)
    choices = []
    for p in parts:
        if p == "([^/]+)":
            choices.append(["{id}"])
        elif p.startswith("(") and "|" in p:
            choices.append(p[1:-1].split("|"))
        else:
            choices.append([p])
    for combo in itertools.product(*choices):
        served.add((method.upper(), "".join(combo)))

missing_doc = sorted(served - documented)
missing_route = sorted(documented - served)
print(f"{len(served)} routes served, {len(documented)} documented")
if missing_doc:
    print("served but not in docs/openapi.yaml:", missing_doc)
if missing_route:
    print("documented but not served:", missing_route)
sys.exit(1 if missing_doc or missing_route else 0)
