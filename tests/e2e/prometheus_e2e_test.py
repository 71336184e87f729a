#!/usr/bin/env python3
"""zpaged scraped by a real Prometheus.

Starts zpaged and Prometheus (Debian's package) on free loopback ports, with
the scrape config and alert rules from deploy/prometheus/ (the target pointed
at this zpaged), stores corpus pages in two tenants, and asks Prometheus'
query API until zpaged_stored_pages and zpaged_density for each tenant equal
what the Stats RPC says. Also runs promtool check metrics on a scrape, checks
that the alert rules loaded, and that every dashboard query evaluates.
Cleans up its processes and files whatever happens.

Usage: prometheus_e2e_test.py SOURCE_DIR ZPAGED ZPAGECTL CORPUS_DIR
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

PAGE = 4096
TENANTS = {"e2e-alpha": 120, "e2e-beta": 60}  # pages each


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_until(what, check, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last is True:
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def main():
    src, zpaged, zpagectl, corpus = sys.argv[1:5]
    work = tempfile.mkdtemp(prefix="zpaged-e2e-")
    procs = []
    checks = failures = 0

    def report(ok, what):
        nonlocal checks, failures
        checks += 1
        failures += not ok
        print(("ok: " if ok else "FAILED: ") + what, flush=True)

    try:
        grpc_port, metrics_port, prom_port = free_port(), free_port(), free_port()
        server = f"127.0.0.1:{grpc_port}"
        procs.append(subprocess.Popen(
            [zpaged, f"--listen={server}",
             f"--metrics_listen=127.0.0.1:{metrics_port}"],
            stdout=subprocess.DEVNULL, stderr=open(f"{work}/zpaged.log", "w")))

        # deploy/prometheus as shipped, but scraping this zpaged every second.
        config = open(f"{src}/deploy/prometheus/prometheus.yml").read()
        # The compose stack's three members, here one local server.
        assert '"zpaged-0:9464"' in config and "scrape_interval: 5s" in config
        config = re.sub(r"targets: \[[^\]]*\]",
                        f'targets: ["127.0.0.1:{metrics_port}"]', config)
        config = config.replace("scrape_interval: 5s", "scrape_interval: 1s")
        config = config.replace("evaluation_interval: 5s",
                                "evaluation_interval: 1s")
        open(f"{work}/prometheus.yml", "w").write(config)
        shutil.copy(f"{src}/deploy/prometheus/alerts.yml", work)
        print(f"starting prometheus on 127.0.0.1:{prom_port}", flush=True)
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={work}/prometheus.yml",
             f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=open(f"{work}/prom.log", "w")))

        # Pages from the corpus, different ones for each tenant.
        kinds = [l.split("\t")[1] for l in open(f"{corpus}/manifest.tsv")]
        data = open(f"{corpus}/pages.bin", "rb").read()
        wait_until("zpaged", lambda: subprocess.run(
            [zpagectl, f"--server={server}", "health"],
            capture_output=True).returncode == 0)
        index = 0
        for tenant, count in TENANTS.items():
            print(f"putting {count} corpus pages into {tenant}", flush=True)
            for key in range(count):
                page = data[index * PAGE:(index + 1) * PAGE]
                index += 1
                subprocess.run([zpagectl, f"--server={server}",
                                f"--tenant={tenant}", "put", str(key)],
                               input=page, check=True, capture_output=True)

        def stats(tenant):
            out = subprocess.run(
                [zpagectl, f"--server={server}", f"--tenant={tenant}",
                 "stats", "--json"], check=True, capture_output=True).stdout
            return json.loads(out)

        def query(expr):
            url = (f"http://127.0.0.1:{prom_port}/api/v1/query?" +
                   urllib.parse.urlencode({"query": expr}))
            answer = json.loads(http_get(url))
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        for tenant in TENANTS:
            want = stats(tenant)

            def agrees():
                got_pages = query(f'zpaged_stored_pages{{tenant="{tenant}"}}')
                got_density = query(f'zpaged_density{{tenant="{tenant}"}}')
                if not got_pages or not got_density:
                    return "no samples yet"
                pages = float(got_pages[0]["value"][1])
                density = float(got_density[0]["value"][1])
                if pages != want["stored_pages"] or \
                        abs(density - want["density"]) > 1e-6:
                    return f"prometheus {pages}, {density}; stats {want}"
                return True
            try:
                wait_until(f"Prometheus to agree with Stats for {tenant}",
                           agrees)
                report(True, f"{tenant}: stored_pages {want['stored_pages']} "
                             f"and density {want['density']:.4f} agree")
            except AssertionError as e:
                report(False, str(e))

        scrape = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        lint = subprocess.run(["promtool", "check", "metrics"], input=scrape,
                              capture_output=True, text=True)
        report(lint.returncode == 0 and not lint.stdout.strip(),
               "promtool check metrics is clean" +
               (f": {lint.stdout}{lint.stderr}" if lint.returncode or
                lint.stdout.strip() else ""))
        report('zpaged_requests_total{code="OK",method="Put"} 180' in scrape,
               "Puts counted by method and code")

        rules = json.loads(http_get(
            f"http://127.0.0.1:{prom_port}/api/v1/rules"))["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        report({"ZpagedTenantAtLimit", "ZpagedPutsRejected"} <= names,
               f"alert rules loaded: {sorted(names)}")

        dashboard = json.load(
            open(f"{src}/deploy/grafana/dashboards/zpaged.json"))
        bad = []
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$tenant", ".*")
                try:
                    query(expr)
                except Exception as e:
                    bad.append(f"{panel['title']}: {e}")
        report(not bad, "every dashboard query evaluates" +
               (f": {bad}" if bad else ""))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if failures:
            for log in ("zpaged.log", "prom.log"):
                path = os.path.join(work, log)
                if os.path.exists(path):
                    print(f"--- {log}\n" + open(path).read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)

    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
