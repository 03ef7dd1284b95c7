"""A virtual validator on a pseudo-terminal, for the technician tools.

The real MicroPython unix port runs the firmware with the simulated hardware
and answers its REPL (and raw REPL) on a pty, exactly what mpremote and `ykt
deploy/provision/diagnose/logs pull` talk to over USB. The unix port has no soft
reboot (Ctrl-D at an empty raw prompt ends the process), so this supervisor
plays the board's part: it restarts the interpreter and prints what a board
prints ("MPY: soft reboot"), staying in raw REPL mode if the client was in it.

The device's flash is a folder (its cwd); NVS, RTC memory and the world's state
live beside it, so a virtual device survives restarts like a board.
"""
import os
import pty
import select
import signal
import subprocess
import time
import tty

from ykt_tools import BOARDS, SIMHW
from ykt_tools.sim import mp

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"

class VirtualDevice:
    def __init__(self, devdir, board="bus_validator", heap="256K", link=None, log=None):
        self.devdir = os.path.abspath(devdir)
        self.flash = os.path.join(self.devdir, "flash")
        os.makedirs(self.flash, exist_ok=True)
        self.board = board
        self.heap = heap
        self.link = link
        self.log = log or (lambda msg: None)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.child = None
        self.cmaster = None
        self.raw = False
        self.resets = 0
        self._stop = False
        self._tail = b""

    def _spawn(self, run_main):
        m, s = pty.openpty()
        tty.setraw(s)
        env = {"YKT_VDEV_DIR": self.devdir, "YKT_VDEV_BOARD": self.board,
               # the world reads the board's description from the repo (cwd is the flash)
               "YKT_BOARDS": BOARDS, "YKT_VDEV_RUN_MAIN": "1" if run_main else "0"}
        # The virtual chip (fakes, simulated peripherals) sits where frozen
        # modules sit on a board; the device's own files come from its flash,
        # not from firmware/. heap is the firmware's budget, as in the simulator.
        self.child = mp.start("micropython", os.path.join(SIMHW, "vdevboot.py"), fw_heap=self.heap,
                              firmware=None, host=False, path=(self.flash, os.path.join(self.flash, "lib")),
                              env=env, cwd=self.flash, interactive=True, stdin=s, stdout=s, stderr=s, text=False,
                              start_new_session=True)
        os.close(s)
        self.cmaster = m
        self._tail = b""

    def _read_child_until(self, marker, timeout=10.0):
        buf = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not buf.endswith(marker):
            r, _, _ = select.select([self.cmaster], [], [], 0.05)
            if r:
                try:
                    buf += os.read(self.cmaster, 4096)
                except OSError:
                    break
        return buf

    def _soft_reboot(self):
        """What a board does on Ctrl-D: restart the interpreter, keep the mode."""
        self.resets += 1
        self._close_child()
        os.write(self.master, b"MPY: soft reboot\r\n")
        self._spawn(run_main=not self.raw)
        if self.raw:
            # Swallow the interpreter banner; the client sees what a board shows.
            self._read_child_until(b">>> ")
            os.write(self.cmaster, b"\x01")
            out = self._read_child_until(RAW_BANNER)
            i = out.find(b"raw REPL")
            os.write(self.master, out[i:] if i >= 0 else RAW_BANNER)

    def _close_child(self):
        if self.child is not None:
            if self.child.poll() is None:
                try:
                    os.killpg(self.child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.child.wait(2)
                except subprocess.TimeoutExpired:
                    os.killpg(self.child.pid, signal.SIGKILL)
                    self.child.wait()
            self.child = None
        if self.cmaster is not None:
            os.close(self.cmaster)
            self.cmaster = None

    def stop(self):
        self._stop = True

    def _busy(self):
        """Is the interpreter running code (not waiting at a prompt)? A SIGINT
        at a prompt would surface as a KeyboardInterrupt in the next command."""
        if self.child is None or self.child.poll() is not None:
            return False
        t = self._tail
        return not (t.endswith(b">>> ") or t.endswith(b"... ") or t.endswith(b">") or t.endswith(b"\x04"))

    def serve(self, until=None):
        """Relay bytes between the client pty and the interpreter until stop()."""
        if self.link:
            if os.path.lexists(self.link):
                os.unlink(self.link)
            os.symlink(self.path, self.link)
        self._spawn(run_main=True)
        try:
            while not self._stop and (until is None or time.monotonic() < until):
                fds = [self.master] + ([self.cmaster] if self.cmaster is not None else [])
                r, _, _ = select.select(fds, [], [], 0.05)
                if self.master in r:
                    data = os.read(self.master, 4096)
                    # Track the REPL mode as a board would: Ctrl-A raw, Ctrl-B friendly.
                    for b in data:
                        if b == 1:
                            self.raw = True
                        elif b == 2:
                            self.raw = False
                    if b"\x03" in data and self._busy():
                        # A board's UART sees Ctrl-C while code runs; the
                        # unix port only notices SIGINT (its tty is raw).
                        try:
                            os.kill(self.child.pid, signal.SIGINT)
                        except (ProcessLookupError, AttributeError):
                            pass
                    os.write(self.cmaster, data)
                if self.cmaster is not None and self.cmaster in r:
                    try:
                        data = os.read(self.cmaster, 4096)
                    except OSError:
                        data = b""
                    if data:
                        self._tail = (self._tail + data)[-32:]
                        os.write(self.master, data)
                if self.child is not None and self.child.poll() is not None:
                    # Drain what it printed last, then reboot like a board.
                    while True:
                        rr, _, _ = select.select([self.cmaster], [], [], 0.02)
                        if not rr:
                            break
                        try:
                            data = os.read(self.cmaster, 4096)
                        except OSError:
                            break
                        if not data:
                            break
                        os.write(self.master, data)
                    self._soft_reboot()
        finally:
            self._close_child()
            if self.link and os.path.islink(self.link):
                os.unlink(self.link)
