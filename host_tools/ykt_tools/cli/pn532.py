"""`ykt pn532 ...`: the simulated PN532 for host tools.

`ykt pn532 pty --card ssc_nanning` runs the simulator in HSU mode behind a
pseudo-terminal and prints its path (alone, as the first stdout line), so any PN532 host stack (nfcpy, libnfc,
a MicroPython driver on a real UART bridge) can talk to it like to a PN532 on
a USB-serial adapter. The virtual clock follows wall time here.
"""
import json
import os
import select
import signal
import sys
import time

from ykt_tools import SIMHW


def register(sub):
    p = sub.add_parser("pn532", help="simulated PN532 reader (pty for nfcpy/libnfc, card profiles)")
    ps = p.add_subparsers(dest="pn532_cmd", metavar="ACTION")
    ps.required = True
    pp = ps.add_parser("pty", help="run the simulated PN532 (HSU) behind a pseudo-terminal")
    pp.add_argument("--card", action="append", default=[],
                    help="card profile in the field (repeatable; see `ykt pn532 cards`)")
    pp.add_argument("--link", help="also make this symlink to the pty, e.g. /dev/ykt-pn532 so that "
                                   "nfcpy opens it as tty:ykt-pn532:pn532")
    pp.add_argument("--timing", help="JSON object overriding timing model keys, e.g. '{\"cmd_us\": 500}'")
    pp.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    pp.add_argument("--trace", action="store_true", help="print every frame to stderr")
    pp.set_defaults(func=run_pty)
    pc = ps.add_parser("cards", help="list the card profiles")
    pc.add_argument("--json", action="store_true")
    pc.set_defaults(func=run_cards)


def _simhw():
    if SIMHW not in sys.path:
        sys.path.insert(0, SIMHW)


def run_cards(args):
    _simhw()
    from vhw import rfcards

    rows = [(n, rfcards.profile(n)) for n in rfcards.names()]
    if args.json:
        print(json.dumps(dict(rows), indent=1, sort_keys=True))
    else:
        for n, p in rows:
            print("%-26s %-15s %s" % (n, p.get("type", "ssc"), p.get("about", "")))
    return 0


class _PtyPort:
    """What the simulator sends goes to the pty master, i.e. to the host's tty."""

    def __init__(self, fd):
        self.fd = fd

    def deliver(self, buf):
        view = memoryview(bytes(buf))
        while view:
            n = os.write(self.fd, view)
            view = view[n:]


def run_pty(args):
    _simhw()
    import tty
    import vclock
    from vhw import bus
    from vhw.pn532sim import PN532Sim

    timing = json.loads(args.timing) if args.timing else None
    vclock.reset()
    bus.reset()
    sim = PN532Sim(timing=timing)
    master, slave = os.openpty()
    tty.setraw(slave)          # no echo, no line discipline: bytes pass untouched
    path = os.ttyname(slave)
    sim.attach_hsu(0, _PtyPort(master))
    for name in args.card:
        sim.field.present(name)
    if args.trace:
        def trace(d, fr):
            sys.stderr.write("%9.3f ms %s %s\n" % (vclock.now_us() / 1000.0, d, fr.hex(" ")))
        sim.on_frame = trace
    link = None
    if args.link:
        if os.path.lexists(args.link):
            os.unlink(args.link)
        os.symlink(path, args.link)
        link = args.link
    print(path, flush=True)  # first stdout line: the pty path alone, for scripts
    sys.stderr.write("simulated PN532 (HSU, 115200 8N1) on %s%s; cards in the field: %s\n" % (
        path, (" = %s" % link) if link else "", ", ".join(args.card) or "none"))
    sys.stderr.flush()

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    t0 = time.monotonic()
    end = t0 + args.seconds if args.seconds else None
    try:
        # We keep our own descriptor of the slave open so that the master
        # never sees a hang-up while a client closes and reopens the port
        # (nfcpy reopens it to change the baud rate).
        while not stop:
            now = time.monotonic()
            if end is not None and now >= end:
                break
            vclock.advance_to_us(int((now - t0) * 1e6))
            nxt = vclock.next_event_us()
            wait = 0.05
            if nxt is not None:
                wait = min(wait, max(0.0, nxt / 1e6 - (now - t0)))
            r, _, _ = select.select([master], [], [], wait)
            vclock.advance_to_us(int((time.monotonic() - t0) * 1e6))
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    time.sleep(0.01)
                    continue
                if data:
                    sim.uart_rx(data)
    except KeyboardInterrupt:
        pass
    finally:
        if link:
            try:
                os.unlink(link)
            except OSError:
                pass
        os.close(master)
        os.close(slave)
    s = sim.stats
    print("stopped: %d commands, %d bytes in, %d bytes out, modeled RF %.1f ms" % (
        sum(s["commands"].values()), s["bytes_in"], s["bytes_out"], s["rf_us"] / 1000.0), flush=True)
    return 0
