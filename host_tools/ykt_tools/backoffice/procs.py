"""Start back-office worker processes (benchmarks, multi-worker tests)."""
import os
import subprocess
import sys

from ykt_tools import ROOT, FIRMWARE
from ykt_tools.backoffice.server import free_port


class Worker:
    def __init__(self, db_url, port=None, env=None, wait=True):
        self.port = port or free_port()
        e = dict(os.environ)
        e["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "host_tools"), FIRMWARE] +
                                          ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
        e.update(env or {})
        self.p = subprocess.Popen([sys.executable, "-m", "ykt_tools.backoffice.server", "--db", db_url,
                                   "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=e, cwd=ROOT, text=True)
        self.url = "http://127.0.0.1:%d" % self.port
        if wait:
            self.wait_ready()

    def wait_ready(self):
        line = self.p.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError("worker failed to start: %s %s" % (line, self.p.stderr.read()[-2000:]))
        return self

    def cpu_s(self):
        """User + system CPU seconds of the worker so far (/proc)."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return (int(parts[11]) + int(parts[12])) / tck

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_workers(db_url, n, env=None):
    """n worker processes started in parallel; -> [Worker] once all are ready."""
    ws = [Worker(db_url, env=env, wait=False) for _ in range(n)]
    try:
        for w in ws:
            w.wait_ready()
    except Exception:
        for w in ws:
            w.stop()
        raise
    return ws
