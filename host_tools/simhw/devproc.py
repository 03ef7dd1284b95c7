# One simulated validator as a process: the real firmware on this interpreter
# (the MicroPython unix port with an ESP32-like heap, or CPython), driven by
# the scenario runner over stdin/stdout, one JSON object per line.
#
#   -> {"cmd": "init", "board": ..., "device_id": n, "backoffice": url, "dev_key": hex,
#       "tok_key": hex, "keyring": hex, "profile": {...}, "uid": hex, "config": {...},
#       "net": {"hosts": {name: addr}, "routes": [[addr, port, real_host, real_port, tls]],
#               "faults": {"count", "start_ms", "end_ms", "seed"}}}
#        with "net" the device reaches the back office over the simulated network
#        (vhw/ipnet.py, virtual time; faults by vhw/netfault.py), else over real sockets
#   -> {"cmd": "run", "until": ms, "events": [{"at": ms, ...}, ...]}
#        events: present {"card": name | {"ssc": {...}}, "for_ms": n}, fault {"fault": name,
#        "params": {...}}, clear_faults, net {"net": true|false}, powercut {"powercut":
#        writes_from_now, "tear": "middle"}, qr {"qr": text}, modem {"modem": fault name
#        of vhw/modemsim.py, or "clear"}
#   <- {"t": ms, "taps": [...], "resets": [...], "errors": n}
#   <- lines "@@J <hex>" between replies: journal records (taprec.SIZE-byte records, plaintext),
#      read back from the flash as soon as they are durable (journal_records below)
#   -> {"cmd": "status"}  <- journal and heap figures
#   -> {"cmd": "quit"}
# The loop runs in fine steps around events and coarse steps (the reader's
# idle poll every COARSE_MS) when nothing is due, so a 16-hour day takes
# seconds; the firmware's own timers (sync, heartbeat, upload age) keep firing.
import sys
import json
import gc

import vclock
from vhw import heapbudget
from vhw import ipnet

COARSE_MS = 2000     # idle stepping when no card is near and no feedback is running
FINE_MS = 20         # the firmware's own idle period
BUSY_MS = 300        # after an event, run fine at least this long (then while feedback runs)
VOICE_WINDOW_MS = 200  # a tap's prompt starts within this (a UART frame, then the module)


def _hex(s):
    import binascii

    return binascii.unhexlify(s) if s else b""


def _where(e):
    """"MemoryError at file:line (the innermost frames)": the runner reports
    where a device ran out of heap, not only that it did. The stack has
    unwound, so the few bytes this needs are free again."""
    import io

    buf = io.StringIO()
    sys.print_exception(e, buf) if hasattr(sys, "print_exception") else buf.write(repr(e))
    lines = [ln.strip() for ln in buf.getvalue().split("\n") if ln.strip().startswith("File")]
    return "MemoryError at " + " < ".join(ln.replace("File ", "").replace('"', "") for ln in lines[-1:-4:-1])


def _taprec_size():
    from ykt.taprec import SIZE

    return SIZE


def journal_records(j, after, buf):
    """Records of journal j with seq > after, read from flash and decrypted
    with the device's journal key by the firmware's own reader, as plaintext
    taprec.SIZE-byte records into buf -> count. The one place that knows how the
    journal is read (its format may change; its reader API stays)."""
    return j.pending_into(buf, after)


class Device:
    def __init__(self, msg):
        from vhw.world import World

        self.msg = msg
        resume = msg.get("resume")
        # The network stack's buffers and the journal reader's buffer are the
        # simulator's, not the firmware's: allocated before the budget applies.
        self.jbuf = bytearray(_taprec_size() * 16)
        self.harvested = resume.get("harvested", 0) if resume else 0
        self.plan = None
        net = self.net = msg.get("net")
        if net:
            ipnet.install()
            for name, addr in net.get("hosts", {}).items():
                ipnet.add_host(name, addr)
            for addr, port, rhost, rport, tls in net.get("routes", []):
                ipnet.add_route(addr, port, ipnet.real(rhost, rport), tls=tls)
            f = net.get("faults")
            if f:
                from vhw import netfault

                self.plan = ipnet.faults = netfault.Plan(f["count"], f["start_ms"], f["end_ms"], f.get("seed", 1))
                if f.get("kinds"):
                    self.plan.only(f["kinds"])
            if resume and resume.get("net"):
                st = resume["net"]
                for k in st["stats"]:
                    ipnet.stats[k] = st["stats"][k]
                for k in st["used"]:
                    ipnet.used[k] = st["used"][k]
                if self.plan is not None:
                    self.plan.restore(st["plan"])
        uid = _hex(msg.get("uid")) or None
        # File-backed flash: a RAM-backed chip would grow 4 KB per touched
        # block inside the firmware's heap budget.
        import os

        # The runner names a file in its own folder; without one, a name no
        # other run uses (vhw.flash.image_path): a power cut restarts this
        # device on the file named in the resume state.
        from vhw.flash import image_path

        fpath = msg.get("flash_path") or image_path(msg["device_id"])
        if not resume:
            try:
                os.remove(fpath)
            except OSError:
                pass
        if resume:
            fpath = resume["flash_path"]
        self.flash_path = fpath
        self.w = World(msg.get("board", "bus_validator"), uid=uid, epoch=msg.get("epoch", 1795000000),
                       flash_path=fpath, start_us=resume["now_us"] if resume else 0)
        w = self.w
        if net:
            from ykt.net import httpc

            ipnet.install(httpc)
        self.taps = []
        self.resets = []
        self.memory_errors = resume.get("memory_errors", 0) if resume else 0
        self.busy_until = 0
        if resume:
            heapbudget.carry(resume.get("heap"))
            # A reset: this interpreter is the device after power came back.
            w.restore_chip(resume, resume["cause"])
            self._boot()
            return
        cfg = {"device_id": msg["device_id"], "backoffice": msg.get("backoffice"),
               "sync_interval_s": msg.get("sync_interval_s", 60), "heartbeat_s": msg.get("heartbeat_s", 300),
               "batch_max": msg.get("batch_max", 100), "batch_age_s": msg.get("batch_age_s", 30)}
        if msg.get("backoffice"):
            cfg["wifi"] = {"ssid": "ykt-depot"}   # the World's simulated access point
            w.nvs_set("wifi_key", b"depot-wifi-key")
        cfg.update(msg.get("config") or {})
        w.write_json("config.json", cfg)
        if msg.get("profile"):
            w.write_json("data/profile.json", msg["profile"])
        if msg.get("keyring"):
            w.write("data/keys.bin", _hex(msg["keyring"]))
        for name, key in (("dev_key", "dev_key"), ("tok_key", "tok_key")):
            if msg.get(key):
                w.nvs_set(name, _hex(msg[key]))
        self._boot()

    def _boot(self, cause=None):
        if cause is None:
            self.app = self.w.boot()
        else:
            # Nothing of the old firmware instance survives a reset: drop it
            # before the new one boots, as the device's RAM would be cleared.
            self.app = None
            self.w.app = None
            gc.collect()
            self.app = self.w.reboot(cause)
        self.app.on_event = self._on_tap
        self.busy_until = vclock.now_ms() + BUSY_MS

    def _on_tap(self, tap, kind, msg):
        from ykt import taprec
        from ykt import outcome

        d = taprec.to_dict(tap)
        d["fb"] = kind
        d["text"] = outcome.key(msg)
        d["at"] = vclock.now_ms()
        self.taps.append(d)

    def _taps_out(self, flush=False):
        """The taps to report now. On a board with a voice module each tap
        gets the prompts the simulated module started after it and before the
        next tap, within VOICE_WINDOW_MS (the frame takes ~10 ms on the line
        at 9600 baud): [track, volume] pairs, as heard. A tap whose window is
        still open waits for the next slice (flush: report everything)."""
        v = self.w.voice
        if v is None:
            taps, self.taps = self.taps, []
            return taps
        now = vclock.now_ms()
        for d in self.taps:
            d["voice"] = []
        for t_us, track, vol in v.played:
            ms = t_us // 1000
            owner = None
            for d in self.taps:
                if d["at"] <= ms:
                    owner = d
            if owner is not None and ms - owner["at"] <= VOICE_WINDOW_MS:
                owner["voice"].append([track, vol])
        out = [d for d in self.taps if flush or now - d["at"] > VOICE_WINDOW_MS]
        self.taps = [d for d in self.taps if not (flush or now - d["at"] > VOICE_WINDOW_MS)]
        v.played = [p for p in v.played if p[0] // 1000 >= now - 2 * VOICE_WINDOW_MS] if self.taps else []
        return out

    def _apply(self, ev):
        w = self.w
        if "card" in ev:
            c = ev["card"]
            if isinstance(c, dict):
                from vhw import rfcards

                kw = dict(c["ssc"])
                card = rfcards.make_ssc(**kw)
            else:
                card = c
            w.field.present(card, 0, ev.get("for_ms", 600) * 1000)
        elif "fault" in ev:
            w.pn532.fault(ev["fault"], **(ev.get("params") or {}))
        elif "clear_faults" in ev:
            w.pn532.clear_faults()
        elif "net" in ev:
            from vhw import netsim

            netsim.set_up(bool(ev["net"]))
        elif "modem" in ev and w.modem is not None:
            if ev["modem"] == "clear":
                for f in ("no_sim", "no_registration", "weak_signal"):
                    w.modem.fault(f, False)
            else:
                w.modem.fault(ev["modem"])
        elif "powercut" in ev:
            w.chip.flash.cut_after_writes(int(ev["powercut"]), ev.get("tear", "middle"))
        elif "qr" in ev and w.qr is not None:
            w.qr.scan(ev["qr"])
        self.busy_until = vclock.now_ms() + BUSY_MS

    def run(self, until, events):
        events = sorted(events, key=lambda e: e["at"])
        i = 0
        app = None
        while vclock.now_ms() < until:
            while i < len(events) and events[i]["at"] <= vclock.now_ms():
                self._apply(events[i])
                i += 1
            app = self.app
            try:
                busy = heapbudget.step(app)
                now = vclock.now_ms()
                nxt = events[i]["at"] if i < len(events) else until
                if busy:
                    self.busy_until = now + BUSY_MS
                http = getattr(app, "http", None)
                fb = app.feedback
                if busy or now < self.busy_until or len(self.w.field) or (fb is not None and fb.busy()):
                    step = FINE_MS
                elif http is not None and http.busy():
                    # on the simulated network nothing happens to the exchange
                    # before its next event (a lost reply: the timeout)
                    q = ipnet.quiet_until_us() if self.net else vclock.now_us()
                    step = COARSE_MS if q is None else max(FINE_MS, min(COARSE_MS, (q - vclock.now_us()) // 1000))
                else:
                    step = COARSE_MS
                step = min(step, max(1, nxt - now), max(1, until - now))
                vclock.sleep_ms(step)
            except vclock.DeviceReset as e:
                # RAM is gone at a reset: end this interpreter; the runner
                # starts a fresh one on the same flash and chip state.
                return self._restart(e.cause, e.detail, events[i:], until)
            except MemoryError as e:
                self.memory_errors += 1
                return self._restart("soft", _where(e), events[i:], until)
            j = app.journal
            if j is not None and j.next_seq - 1 > self.harvested:
                self._harvest(j)
        taps = self._taps_out()
        resets, self.resets = self.resets, []
        gc.collect()
        heapbudget.collected()
        return {"t": vclock.now_ms(), "taps": taps, "resets": resets,
                "mem_free": gc.mem_free() if hasattr(gc, "mem_free") else -1, "events_q": len(vclock._events)}

    def _harvest(self, j):
        """Send the records made durable since the last look to the runner,
        which compares each with the row the back office stored. Run between
        loop steps (never inside one), before an ack can delete a segment."""
        import binascii
        import struct

        buf = self.jbuf
        while True:
            n = journal_records(j, self.harvested, buf)
            if not n:
                return
            print("@@J " + binascii.hexlify(memoryview(buf)[:n * _taprec_size()]).decode())
            self.harvested = struct.unpack_from("<I", buf, (n - 1) * _taprec_size())[0]

    def net_state(self):
        st = {"stats": dict(ipnet.stats), "used": dict(ipnet.used)}
        if self.plan is not None:
            st["plan"] = self.plan.state()
        return st

    def _restart(self, cause, detail, rest, until):
        self.resets.append({"at": vclock.now_ms(), "cause": cause, "detail": detail})
        st = self.w.chip_state()
        st["cause"] = "power" if cause not in ("power", "hard", "wdt", "soft", "deepsleep") else cause
        st["flash_path"] = self.flash_path
        st["memory_errors"] = self.memory_errors + (self.app.memory_errors if self.app is not None else 0)
        st["heap"] = heapbudget.report()   # the high-water marks outlive the interpreter
        st["harvested"] = self.harvested
        st["net"] = self.net_state()
        taps = self._taps_out(flush=True)
        resets, self.resets = self.resets, []
        return {"t": vclock.now_ms(), "taps": taps, "resets": resets, "restart": st,
                "rest": rest, "until": until}

    def status(self):
        app = self.app
        j = app.journal
        up = app.uplink
        st = {"next_seq": j.next_seq if j else 0, "backlog": j.backlog if j else 0,
                "cursor": j.cursor if j else 0,
                # MemoryErrors that restarted the interpreter plus those the loop caught
                "memory_errors": self.memory_errors + app.memory_errors, "errors": app.errors[-6:],
                "uplink": up.state_name() if up else None,
                "link": app.link_used or None,
                "modem": app.modem.status() if app.modem is not None else None,
                "versions": app.sync.versions() if app.sync else {},
                "sync_errors": [list(e) for e in app.sync.errors] if app.sync else [],
                "reader_fault": bool(app.reader and app.reader.fault),
                "found": app.report.get("found"), "missing": app.report.get("missing")}
        st.update(heapbudget.report())
        st["harvested"] = self.harvested
        st["net"] = self.net_state()
        if self.plan is not None:
            st["net"]["faults"] = self.plan.report()
        return st


def main():
    dev = None
    while True:
        heapbudget.sim_begin()   # the protocol's objects stay out of the firmware's budget
        line = sys.stdin.readline()
        if not line:
            break
        msg = json.loads(line)
        line = None
        heapbudget.sim_end()
        cmd = msg.get("cmd")
        try:
            if cmd == "init":
                dev = Device(msg)
                out = {"ok": True, "report": {"found": dev.app.report["found"],
                                              "missing": dev.app.report["missing"]}}
            elif cmd == "run":
                out = dev.run(msg["until"], msg.get("events", []))
            elif cmd == "status":
                out = dev.status()
            elif cmd == "quit":
                print(json.dumps({"ok": True}))
                if dev is not None:
                    import os

                    try:
                        os.remove(dev.flash_path)
                    except OSError:
                        pass
                break
            else:
                out = {"error": "unknown command %s" % cmd}
        except Exception as e:
            import io

            buf = io.StringIO()
            sys.print_exception(e, buf) if hasattr(sys, "print_exception") else None
            out = {"error": "%s: %s" % (type(e).__name__, e), "trace": buf.getvalue()}
        heapbudget.sim_begin()
        msg = None
        print(json.dumps(out))
        try:
            sys.stdout.flush()
        except AttributeError:
            pass
        if "restart" in out:
            break
        out = None
        heapbudget.sim_end()


main()
