#!/usr/bin/env python3
"""Preview src/observe/dashboard/ without the Rust binary: serves the page at the same URLs
as `bindery` and streams fake samples over Server-Sent Events.

    python3 scripts/dashboard-preview.py [--port 8099] [--history 120] [--mode replay --finish-after 30]
    open http://127.0.0.1:8099/dashboard
"""
import argparse, json, random, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "observe" / "dashboard"
FILES = {
    "/dashboard": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/dashboard/vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "/dashboard/vendor/uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
}
RESOURCES = ["deployments.apps", "namespaces", "configmaps", "services", "secrets", "jobs.batch",
             "serviceaccounts", "roles.rbac.authorization.k8s.io", "ingresses.networking.k8s.io",
             "statefulsets.apps", "managedclusters.cluster.open-cluster-management.io"]


class Fake:
    """Cumulative state behind the fake samples; one step() per second."""

    def __init__(self, mode, finish_after):
        self.mode, self.finish_after, self.n = mode, finish_after, 0
        self.totals = dict.fromkeys(["events", "binding_changes", "entries_added", "entries_removed",
                                     "sink_writes", "sink_errors", "epochs", "latency_count"], 0)
        self.lock = threading.Lock()

    def step(self, t_ms):
        with self.lock:
            self.n += 1
            n, r = self.n, random.random
            active = RESOURCES[: min(len(RESOURCES), 3 + n // 20)]  # new resources appear over time
            by_res = {k: round(r() * 20 * (i + 1) / len(active), 1) for i, k in enumerate(active)}
            by_res["managedclusters.cluster.open-cluster-management.io"] = float(random.randint(0, 3))
            its = by_res["managedclusters.cluster.open-cluster-management.io"]
            events = sum(by_res.values())
            changes, writes, errors = random.randint(0, 8), random.randint(0, 6), int(r() < 0.1)
            latency = None if changes == 0 else {"p50": 0.005 + r() * 0.02, "p99": 0.05 + r() * 0.3}
            for k, v in [("events", round(events)), ("binding_changes", changes), ("entries_added", changes * 2),
                         ("entries_removed", changes // 2), ("sink_writes", writes), ("sink_errors", errors),
                         ("epochs", 1), ("latency_count", changes)]:
                self.totals[k] += v
            sample = {
                "t": t_ms, "mode": self.mode,
                "done": self.mode == "replay" and self.finish_after > 0 and n >= self.finish_after,
                "totals": dict(self.totals),
                "rates": {"events": events, "events_by_space": {"wds": events - its, "its": its},
                          "events_by_resource": by_res, "binding_changes": float(changes),
                          "sink_writes": float(writes), "sink_errors": float(errors)},
                "latency": latency or {"p50": None, "p99": None},
                "top_policies": sorted(({"name": f"policy-{i}", "churn": random.randint(0, 500)}
                                        for i in range(12)), key=lambda p: -p["churn"])[:10],
                "top_resources": sorted(({"name": k, "churn": int(v * 300)} for k, v in by_res.items()),
                                        key=lambda p: -p["churn"])[:10],
                "sizes": {"wecs": 3, "objects": 100 + n, "policies": 12, "bindings": 12,
                          "binding_entries": 40 + n % 7, "destinations": 5},
            }
            if n % 5:  # sometimes missing, as the page must cope with that
                sample["memory_bytes"] = 40_000_000 + n * 1000
            return sample


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/") or "/"
        if path in FILES:
            name, ctype = FILES[path]
            return self.reply(200, ctype, (ROOT / name).read_bytes())
        if path == "/dashboard/snapshot":
            return self.reply(200, "application/json", json.dumps(self.server.latest).encode())
        if path == "/dashboard/events":
            return self.events()
        self.reply(404, "text/plain", b"not found\n")

    def reply(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_event(self, event, data):
        self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        try:
            history = list(self.server.history)
            self.send_event("history", history)
            last_t = history[-1]["t"] if history else 0
            while True:  # then every new sample, once
                time.sleep(0.2)
                for s in [s for s in self.server.history if s["t"] > last_t]:
                    self.send_event("sample", s)
                    last_t = s["t"]
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--history", type=int, default=120, help="past samples sent on connect (max 300)")
    ap.add_argument("--mode", choices=["run", "replay"], default="run")
    ap.add_argument("--finish-after", type=int, default=0, help="replay: done after this many samples")
    args = ap.parse_args()

    fake = Fake(args.mode, args.finish_after)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    now = int(time.time() * 1000)
    server.history = [fake.step(now - (args.history - i) * 1000) for i in range(min(args.history, 300))]
    server.latest = server.history[-1] if server.history else fake.step(now)

    def tick():  # one sample per second, shared by all clients
        while True:
            time.sleep(1)
            server.latest = fake.step(int(time.time() * 1000))
            server.history = (server.history + [server.latest])[-300:]

    threading.Thread(target=tick, daemon=True).start()
    print(f"http://127.0.0.1:{args.port}/dashboard", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
