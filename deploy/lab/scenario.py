#!/usr/bin/python3
"""Applies a lab scenario through edge-os's REST API only, and watches it.

  scenario.py apply FILE     tenant, slice, link impairments, a delay session per pair of sites,
                             loss monitoring (alternate marking) of the flows the scenario names
  scenario.py watch          a live table of every session (pair, direct, return, loss) and of SLA
                             steering (each steered direction's candidates, the events) until Ctrl-C
  scenario.py demo FILE      the same table while the scenario's "demo" part plays: traffic on the
                             monitored flows, and one link impaired for a while after a minute
  scenario.py expected FILE  the delay each session should measure, from the impairments

A scenario (deploy/lab/scenario.json) names sites by letter (a = edge-a with site-a behind
lan0), pins directions through a core router ("via": "p1"; unpinned traffic takes the
underlay's preferred core, p1), and impairs edge <-> core links per direction. The controller's
address and operator token come from `lab.sh env` (SEGWAN_URL, SEGWAN_TOKEN).
"""
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(HERE, "lab.sh")
SITE_INDEX = {"a": 1, "b": 2, "c": 3}
DEFAULT_CORE = "p1"  # the edges' underlay prefers wan1 (metric 100), which goes to p1


def lab_env():
    out = subprocess.run([LAB, "env"], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class Api:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def __call__(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/api/v1{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            err = json.loads(e.read() or b"{}").get("error", {})
            field = f" ({err['field']})" if err.get("field") else ""
            sys.exit(f"scenario: {method} {path}: {e.code} {err.get('message', '')}{field}")


def load(path):
    with open(path) as f:
        sc = json.load(f)
    for s in sc["slice"]["sites"]:
        if s not in SITE_INDEX:
            sys.exit(f"scenario: slice.sites: no site '{s}' in the lab (a, b, c)")
    for i, p in enumerate(sc["slice"].get("paths", [])):
        if p.get("via", DEFAULT_CORE) not in ("p1", "p2"):
            sys.exit(f"scenario: slice.paths[{i}].via: must be p1 or p2")
    return sc


def pairs(sc):
    return list(itertools.combinations(sc["slice"]["sites"], 2))


def core_of(sc, x, y):
    for p in sc["slice"].get("paths", []):
        if p["from"] == x and p["to"] == y:
            return p.get("via", DEFAULT_CORE)
    return DEFAULT_CORE


def expected_ms(sc, x, y):
    """One-way delay x -> y: the impairment into the core plus the one out of it."""
    core = core_of(sc, x, y)
    imp = {(i["from"], i["to"]): i.get("delay_ms", 0) for i in sc.get("impairments", [])}
    return imp.get((f"edge-{x}", core), 0) + imp.get((core, f"edge-{y}"), 0)


def apply(path):
    sc = load(path)
    env = lab_env()
    api = Api(env["SEGWAN_URL"], env["SEGWAN_TOKEN"])
    tenant = api("POST", "/tenants", {"name": sc["tenant"]})
    tt = tenant["token"]
    env_file = "/run/segwan-lab/tenant.env"
    sites = [{"device": f"edge-{s}", "interface": "lan0", "nexthop4": f"10.10.{SITE_INDEX[s]}.2"}
             for s in sc["slice"]["sites"]]
    core_sid = {"p1": env["SID_P1"], "p2": env["SID_P2"]}
    paths = [{"from": f"edge-{p['from']}", "to": f"edge-{p['to']}", "waypoints": [core_sid[p.get("via", DEFAULT_CORE)]]}
             for p in sc["slice"].get("paths", [])]
    sl = api("POST", "/slices", {"name": sc["slice"]["name"], "sites": sites, "paths": paths}, token=tt)
    for i in sc.get("impairments", []):
        cmd = [LAB, "impair", i["from"], i["to"], "--delay", str(i.get("delay_ms", 0)),
               "--jitter", str(i.get("jitter_ms", 0)), "--loss", str(i.get("loss_pct", 0))]
        subprocess.run(cmd, check=True, env={**os.environ, "LAB_QUIET": "1"})
    so = sc.get("sessions", {})
    for x, y in pairs(sc):
        api("POST", "/delay-sessions", {"slice": sl["id"], "sender": f"edge-{x}", "reflector": f"edge-{y}",
                                        "interval_ms": so.get("interval_ms", 100),
                                        "reflector_mode": so.get("reflector_mode", "stateful"),
                                        "timestamp_format": so.get("timestamp_format", "ntp")}, token=tt)
    for i, l in enumerate(sc.get("loss", [])):
        for k in ("from", "to"):
            if l.get(k) not in sc["slice"]["sites"]:
                sys.exit(f"scenario: loss[{i}].{k}: not a site of the slice")
        api("POST", "/loss-sessions", {"slice": sl["id"], "from": f"edge-{l['from']}", "to": f"edge-{l['to']}",
                                       "period_ms": l.get("period_ms", 10000)}, token=tt)
    st = sc.get("steering")
    if st:
        sla = api("POST", "/sla-classes", st["sla"], token=tt)
        body = {"slice": sl["id"], "sla": sla["id"], "probe": st.get("probe", {})}
        if st.get("pairs"):
            body["pairs"] = [{"from": f"edge-{p['from']}", "to": f"edge-{p['to']}"} for p in st["pairs"]]
        pol = api("POST", "/steering-policies", body, token=tt)
        print(f"SEGWAN_POLICY={pol['id']}")
    with open(env_file, "w") as f:
        f.write(f"SEGWAN_TENANT_TOKEN={tt}\n")
    print(f"SEGWAN_TENANT_TOKEN={tt}")
    print(f"SEGWAN_SLICE={sl['id']}")


def impair(i, restore_from=None):
    """Sets a link's impairment; with restore_from (a scenario), puts back what it says for the link."""
    if restore_from is not None:
        i = next((x for x in restore_from.get("impairments", []) if (x["from"], x["to"]) == (i["from"], i["to"])),
                 {"from": i["from"], "to": i["to"]})
    cmd = [LAB, "impair", i["from"], i["to"], "--delay", str(i.get("delay_ms", 0)),
           "--jitter", str(i.get("jitter_ms", 0)), "--loss", str(i.get("loss_pct", 0))]
    subprocess.run(cmd, check=True, env={**os.environ, "LAB_QUIET": "1"}, stdout=subprocess.DEVNULL)


def steering_rows(api):
    rows = []
    for p in api("GET", "/steering-policies"):
        for d in p["directions"]:
            state = "VIOLATED" if d["violated"] else "within SLA"
            rows.append(f"{p['id']:8} {d['from'] + ' -> ' + d['to']:18} {state:11} traffic on {d['active']}")
            for c in d["candidates"]:
                w = c.get("last_window") or {}
                fmt = lambda v, n=2: "-" if v is None else f"{v:.{n}f}"
                mark = "*" if c["active"] else " "
                verdict = "complies" if c["complies"] else ("violates" if w else "measuring")
                rows.append(f"  {mark} {c['name']:6} {', '.join(c['waypoints']) or 'direct':16} delay {fmt(w.get('delay_ms')):>7} ms"
                            f"  jitter {fmt(w.get('jitter_ms')):>6} ms  loss {fmt(w.get('loss_pct'), 1):>5}%  {verdict}")
    events = api("GET", "/steering-events?limit=4")["events"]
    for e in events:
        path = f"{e['path']} -> {e['to_path']}" if e.get("to_path") else e["path"]
        rows.append(f"  {e['time'][11:19]} {e['kind']:12} {e['from']} -> {e['to']} {path:14} "
                    f"delay {e['measured']['delay_ms'] or 0:.2f} ms")
    return rows


def watch(plan=None):
    """The live table; `plan` (a callable taking the elapsed seconds) returns a line saying what
    the demo is doing, and does it."""
    env = lab_env()
    api = Api(env["SEGWAN_URL"], env["SEGWAN_TOKEN"])
    header = f"{'session':8} {'pair':18} {'direct ms':>10} {'return ms':>10} {'jitter ms':>10} {'lost out':>9} {'lost back':>9}"
    t0 = time.time()
    try:
        while True:
            phase = plan(time.time() - t0) if plan else ""
            rows = []
            for s in api("GET", "/delay-sessions"):
                if s.get("steering"):
                    continue  # the probes show under steering
                st = api("GET", f"/delay-sessions/{s['id']}/stats?since=10s")
                d, r, p = st["direct"], st["return"], st["packets"]
                fmt = lambda v: "-" if v is None else f"{v:.2f}"
                rows.append(f"{s['id']:8} {s['sender'] + ' -> ' + s['reflector']:18} {fmt(d['mean_ms']):>10} "
                            f"{fmt(r['mean_ms']):>10} {fmt(d['jitter_ms']):>10} {str(p['lost_direct'] if p['lost_direct'] is not None else '-'):>9} "
                            f"{str(p['lost_return'] if p['lost_return'] is not None else '-'):>9}")
            loss_rows = []
            for l in api("GET", "/loss-sessions"):
                p = l.get("last_period")
                last = "-" if not p else f"{p['lost']} of {p['sent']} ({100 * p['loss_ratio']:.2f}%)"
                loss_rows.append(f"{l['id']:8} {l['from'] + ' -> ' + l['to']:18} {l['family']:6} {last}")
            steer = steering_rows(api)
            sys.stdout.write("\x1b[H\x1b[J" if sys.stdout.isatty() else "\n")
            print(time.strftime("%H:%M:%S"), "delay, last 10 s (Ctrl-C stops and tears the lab down)")
            if phase:
                print(phase)
            print(header)
            print("\n".join(rows) if rows else "(no sessions)")
            if loss_rows:
                print(f"\n{'loss':8} {'flow':18} {'family':6} lost in the last closed period")
                print("\n".join(loss_rows))
            if steer:
                print("\nSLA steering (* carries the traffic; latest window), then the latest events")
                print("\n".join(steer))
            sys.stdout.flush()
            time.sleep(2)
    except KeyboardInterrupt:
        pass


def demo(path):
    """Traffic on the monitored flows (a ping every 50 ms), then the impairment after a minute,
    lifted after impair_for_s; the table shows the switch and the return."""
    sc = load(path)
    d = sc.get("demo", {})
    env = lab_env()
    pings = []
    for t in d.get("traffic", []):
        dst = env[f"SITE_{t['to'].upper()}_V6"]
        pings.append(subprocess.Popen([LAB, "exec", f"site-{t['from']}", "ping", "-6", "-q", "-i", "0.05", dst],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    imp = d.get("impairment")
    after, span = d.get("impair_after_s", 60), d.get("impair_for_s", 60)
    state = {"on": False, "off": False}

    def plan(t):
        if not imp:
            return ""
        link = f"{imp['from']} -> {imp['to']}"
        if t >= after + span:
            if not state["off"]:
                impair(imp, restore_from=sc)
                state["off"] = True
            return f"demo: {link} back to normal {t - after - span:.0f} s ago; steering returns after its hold-down"
        if t >= after:
            if not state["on"]:
                impair(imp)
                state["on"] = True
            return f"demo: {link} impaired (+{imp.get('delay_ms', 0)} ms) for {after + span - t:.0f} s more"
        return f"demo: {link} will be impaired (+{imp.get('delay_ms', 0)} ms) in {after - t:.0f} s"

    try:
        watch(plan)
    finally:
        for p in pings:
            p.terminate()


def expected(path):
    sc = load(path)
    for x, y in pairs(sc):
        print(f"edge-{x} edge-{y} {expected_ms(sc, x, y)} {expected_ms(sc, y, x)}")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("apply", "watch", "demo", "expected"):
        sys.exit(__doc__)
    if sys.argv[1] == "watch":
        watch()
    elif len(sys.argv) != 3:
        sys.exit(f"usage: scenario.py {sys.argv[1]} FILE")
    else:
        {"apply": apply, "demo": demo, "expected": expected}[sys.argv[1]](sys.argv[2])
