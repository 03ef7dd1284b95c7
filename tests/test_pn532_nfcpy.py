"""An independent host stack against the simulated PN532: nfcpy's own pn532
driver (HSU) talks over a real pseudo-terminal to `ykt pn532 pty`, detects a
simulated social security card and exchanges APDUs with it. nfcpy does its
own wake-up, SetSerialBaudrate, extended-frame line test, register access,
RATS and ISO-DEP blocks over InCommunicateThru, so this checks the simulator's
byte protocol against code we did not write."""
import os
import select
import subprocess
import sys
import threading

import pytest

import conftest
from conftest import ROOT

try:
    import nfc
    import nfc.clf.pn532
    import nfc.clf.transport
    import nfc.tag
    from nfc.clf import RemoteTarget
    NFC_ERR = None
except Exception as e:  # pragma: no cover - depends on the environment
    NFC_ERR = "nfcpy cannot be imported: %s: %s" % (type(e).__name__, e)

SELECT_SSC = bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF")


def _need():
    conftest.need(not NFC_ERR, "%s (pip install -r requirements.txt)" % NFC_ERR)
    conftest.need(hasattr(os, "openpty"), "no pseudo-terminals on this platform (os.openpty missing)")


class SimPty:
    """`ykt pn532 pty` in a subprocess, killed after `limit` seconds whatever happens."""

    def __init__(self, cards, limit=40):
        self.link = None
        if os.access("/dev", os.W_OK):
            self.link = "/dev/ykt-pn532-%d" % os.getpid()
        cmd = [sys.executable, "-m", "ykt_tools", "pn532", "pty", "--seconds", str(limit)]
        for c in cards:
            cmd += ["--card", c]
        if self.link:
            cmd += ["--link", self.link]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "firmware")])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.timer = threading.Timer(limit + 5, self.proc.kill)
        self.timer.start()
        r, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if r else ""
        if not line.startswith("/dev/"):
            self.close()
            pytest.fail("simulator did not start: %r %s" % (line, self.proc.stderr.read()))
        self.pty = line.strip()   # first stdout line: the pty path

    def frontend(self):
        if self.link:
            # the path form nfcpy accepts: tty:<name in /dev>:<driver>
            clf = nfc.ContactlessFrontend("tty:%s:pn532" % os.path.basename(self.link))
        else:
            # /dev not writable: nfcpy's path syntax cannot name /dev/pts/N, so
            # open the same driver on the pty directly
            clf = nfc.ContactlessFrontend()
            clf.device = nfc.clf.pn532.init(nfc.clf.transport.TTY(self.pty))
        assert clf.device is not None
        return clf

    def close(self):
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.timer.cancel()
        return out


def test_nfcpy_reads_simulated_ssc():
    _need()
    sim = SimPty(["ssc_nanning"])
    try:
        clf = sim.frontend()
        try:
            assert clf.device.chipset_name == "PN532v1.6"
            target = clf.sense(RemoteTarget("106A"), iterations=3, interval=0.1)
            assert target is not None, "nfcpy found no card"
            assert target.sel_res == bytes.fromhex("20") and target.sdd_res == bytes.fromhex("5A3C9E21")
            assert target.sens_res == bytes.fromhex("0800")
            tag = nfc.tag.activate(clf, target)
            assert tag is not None and tag.TYPE == "Type4Tag"
            fci = tag.transceive(SELECT_SSC)
            assert fci[:4] == bytes.fromhex("6F17840F") and fci[-2:] == b"\x90\x00"
            rec = tag.transceive(bytes.fromhex("00B2012C00"))
            assert rec == bytes.fromhex("0110450100D156000005202103150000A001") + b"\x90\x00"
            rec = tag.transceive(bytes.fromhex("00B2072C00"))
            assert rec == b"\x07\x09A12345678\x90\x00"
            assert tag.transceive(bytes.fromhex("00B2092C00")) == b"\x6a\x83"
            assert tag.is_present
        finally:
            clf.close()   # ACK, SetSerialBaudrate 115200, PowerDown
    finally:
        out = sim.close()
    assert "stopped:" in out


def test_nfcpy_reads_ultralight_through_crc_off_path():
    _need()
    sim = SimPty(["ultralight"])
    try:
        clf = sim.frontend()
        try:
            target = clf.sense(RemoteTarget("106A"), iterations=3, interval=0.1)
            assert target is not None and target.sel_res == b"\x00"
            assert target.sdd_res == bytes.fromhex("04A1B2C3D4E580")
            tag = nfc.tag.activate(clf, target)
            assert tag is not None and tag.TYPE == "Type2Tag"
            page0 = tag.read(0)   # READ 30 00 with the CRC check done by nfcpy itself
            assert page0[:3] == bytes.fromhex("04A1B2") and len(page0) == 16
        finally:
            clf.close()
    finally:
        sim.close()
