# The validator application: boots the board, wires the parts together and
# runs the loop. Order of a tap: read -> decide -> journal (durable) ->
# feedback, so no rider gets a green light for a tap that is not on flash.
# Everything the network needs (uplink, sync, heartbeat) is stepped between
# polls in bounded slices; a tap never waits for it.
import gc
import json
import os

import sys

from ykt import VERSION, cardread, taprec
from ykt.compat import ticks_ms, ticks_diff, ticks_add, sleep_ms, const, mem_free, mem_alloc, read_file
from ykt.fs import join, exists, remove_leftovers
from ykt.outcome import FB_FAULT, M_NOT_CONFIGURED, M_JOURNAL_FULL, KIND_BITS, KIND_MASK, decision

_IDLE_MS = const(20)        # loop period when nothing happens
_GC_MS = const(2000)        # idle collection period
_WDT_MS = const(8000)
_MAX_CONFIG = const(8192)
_NVS_KEYS = ("dev_key", "jrnl_key", "tok_key", "wifi_key")
_SHIFT_FILE = "data/shift.bin"   # the driver shift in force (bus validators), kept across resets
# Directories whose files are replaced with ykt.fs.replace_file: a .tmp left
# by a power cut never got renamed, so the file it was for is still valid.
_TMP_DIRS = ("data", "ota", "app")


def load_json(path, limit=_MAX_CONFIG):
    return json.loads(read_file(path, limit, False))


class _TimeService:
    """Authenticated time from the back office: at boot until trusted (every
    10 s), then hourly so the tick model never drifts far."""

    def __init__(self, clock, http, device_id, key):
        from ykt.net.timesync import TimeQuery

        self.clock = clock
        self.q = TimeQuery(clock, http, device_id, key)
        self._due = ticks_ms()

    def step(self):
        if self.q.active:
            if not self.q.step():
                wait = 3600000 if self.clock.confirmed() else 10000   # RTC time still asks the back office
                self._due = ticks_add(ticks_ms(), wait)
        elif ticks_diff(ticks_ms(), self._due) >= 0:
            self.q.step()


class _OtaService:
    """The updater on a schedule: ykt.ota.updater (its module RAM, its
    object) is imported when a check is due and dropped again once the
    updater is back to idle with nothing staged, so between checks (every
    ota_check_s, 15 min by default) it holds no heap. What must outlive an
    updater (the version it refused, its last errors) is carried over."""

    def __init__(self, *args):
        self._args = args
        self.u = None
        self.state = 0            # the updater's state; 0 = idle
        self.reboot_wanted = False
        self.refused = 0
        self.errors = []
        self._due = ticks_ms()

    def step(self):
        u = self.u
        if u is None:
            if ticks_diff(ticks_ms(), self._due) < 0:
                return 0
            self._due = ticks_add(ticks_ms(), 60000)   # a failed start (flash, bad record) is not retried every loop
            u = self.u = self._make()
        st = self.state = u.step()
        self.reboot_wanted = u.reboot_wanted
        if st == 0 and not u.reboot_wanted and ticks_diff(u._due, ticks_ms()) > 0:
            self._due = u._due
            self.refused = u.refused
            self.errors = u.errors
            self.u = None
            u = None
            _drop("ota.updater")
        return st

    def _make(self):
        from ykt.ota import updater

        (http, dev, key, ring, root, board, iv, clock, interval_s, part) = self._args
        u = updater.Updater(http, dev, key, ring, root=root, board=board, interp=iv, clock=clock,
                            interval_s=interval_s, part=part)
        if self.refused:
            u.refused = self.refused
        u.errors = self.errors
        return u


def _drop(name):
    """Forget a firmware module (boot-only or occasional code): its RAM goes
    back to the heap once nothing else refers to it."""
    sys.modules.pop("ykt." + name, None)
    import ykt

    pkg = ykt
    parts = name.split(".")
    for p in parts[:-1]:
        pkg = getattr(pkg, p, None)
        if pkg is None:
            return
    try:
        delattr(pkg, parts[-1])
    except AttributeError:
        pass


class App:
    def __init__(self, root="", log=print):
        self.root = root
        self.log = log
        self.errors = []          # (where, what): last few, for heartbeat and diagnose
        self.memory_errors = 0    # MemoryErrors caught in the loop (a part failed for want of heap)
        self.report = {}
        self.taps = 0
        self.heap_peak = 0        # live heap high-water mark + largest per-tap transient
        self._live_peak = 0
        self._tap_alloc = 0
        self._gc_at = 0
        self.loops = 0
        self.cr = cardread.CardRead()
        self.tap = taprec.Tap()
        self.reader = None
        self.feedback = None
        self.voice = None         # ykt.ui.voice.Voice on boards that declare "voice"
        self.decider = None
        self.journal = None
        self.scratch = None       # ykt.compat.Scratch: the 4 KB buffer the uplink and a deny-list update share
        self._jidle = None        # the ring journal's erase-ahead, run between taps
        self.denylist = None
        self.uplink = None
        self.sync = None
        self.heartbeat = None
        self.timeq = None
        self.ota = None
        self.clock = None
        self.wlan = None
        self.modem = None         # ykt.net.modem.Modem on boards that declare "modem"
        self.link = None          # ykt.net.link.Link: Wi-Fi first, else cellular
        self.link_used = ""       # the link the network parts last ran over (heartbeat, ykt sim)
        self.qr = None
        self.on_event = None      # simulator hook: called with (tap, feedback kind, message id)
        self._net = ()            # the network parts that exist, stepped in this order

    def _err(self, where, e):
        if isinstance(e, MemoryError):
            self.memory_errors += 1
        msg = "%s: %s" % (type(e).__name__, e) if isinstance(e, BaseException) else str(e)
        if len(self.errors) >= 8:
            self.errors.pop(0)
        self.errors.append((where, msg[:80]))
        self.log("error %s %s" % (where, msg))

    # --- boot -------------------------------------------------------------
    def boot(self):
        from ykt import boardcfg
        from ykt.board import Board

        remove_leftovers(self.root)
        for d in _TMP_DIRS:
            remove_leftovers(join(self.root, d))
        self.board_cfg = boardcfg.load(join(self.root, "board.json"))
        hw = self.hw = Board(self.board_cfg)
        self.found = hw.found
        self.missing = hw.missing
        self.wdt = hw.watchdog(_WDT_MS)
        self._reset = hw.reset
        self.report["board"] = hw.name
        self.report["reset_cause"] = hw.reset_cause()
        self.cfg = {}
        cpath = join(self.root, "config.json")
        if exists(cpath):
            try:
                self.cfg = load_json(cpath)
            except (OSError, ValueError) as e:
                self._err("config", e)
        if exists(join(self.root, "data/config.json")):
            # settings the back office sent (signed; syncsetup.SETTINGS only)
            from ykt.net import syncsetup

            try:
                self.cfg.update(syncsetup.load(self.root, "config"))
            except (OSError, ValueError) as e:
                self._err("config", e)
        self.device_id = self.cfg.get("device_id", 0)
        self.secrets = self._load_secrets()
        self._boot_feedback()
        self._between()
        self._boot_reader()
        self._between()
        self._boot_state()
        self._between()
        self._boot_net()
        if self.voice is not None:
            self.voice.clock = self.clock   # quiet hours follow the trusted clock
        if self.qr is not None:
            self._boot_qr()
        # Boot-only code (board file validation, the board layer) leaves the
        # heap: the hardware objects it made live on in the parts that use them.
        self.hw = None
        self.board_cfg = None
        for m in ("boardcfg", "board"):
            _drop(m)
        hw = None
        # Built once: the loop iterates it without making a tuple per step.
        self._net = [p for p in (self.timeq, self.uplink, self.sync, self.heartbeat, self.ota) if p is not None]
        gc.collect()
        self.report["found"] = self.found
        self.report["missing"] = self.missing
        self.report["provisioned"] = self.decider is not None
        self.report["mem_free"] = mem_free()
        self.report["mem_alloc"] = mem_alloc()
        return self.report

    def _between(self):
        # Between boot phases: the watchdog, and a collection so the next
        # phase's long-lived buffers (deny-list block, journal frames) find
        # contiguous heap. Code loaded from an application slot is compiled
        # on the heap and leaves garbage between the pieces that stay.
        self.wdt.feed()
        gc.collect()

    def _load_secrets(self):
        out = {}
        try:
            nvs = self.hw.nvs()
        except (ImportError, OSError) as e:
            self._err("nvs", e)
            return out
        buf = bytearray(64)
        for k in _NVS_KEYS:
            try:
                n = nvs.get_blob(k, buf)
                out[k] = bytes(buf[:n])
            except OSError:
                pass
        if "jrnl_key" not in out:
            # The journal key never leaves the device: make one at first boot.
            out["jrnl_key"] = os.urandom(16)
            try:
                nvs.set_blob("jrnl_key", out["jrnl_key"])
                nvs.commit()
            except OSError as e:
                self._err("nvs", e)
        return out

    def _boot_feedback(self):
        from ykt.ui.feedback import Feedback

        hw = self.hw
        disp = None
        d = hw.display_i2c()
        if d is not None:
            try:
                from ykt.ui import display

                dev = display.SSD1306_I2C(d[2], d[3], d[0], d[1])
                disp = display.Display(dev, display.load_glyphs())
            except (OSError, ValueError) as e:
                self._err("display", e)
        self.profile = None
        ppath = join(self.root, "data/profile.json")
        if exists(ppath):
            from ykt.rules import catalog

            try:
                self.profile = catalog.load_profile(ppath)
            except (OSError, ValueError) as e:
                self._err("profile", e)
        fcfg = self.profile.feedback if self.profile is not None else None
        self.feedback = Feedback(hw.outputs(), hw.buzzer(), disp, fcfg)
        for k in ("led", "buzzer", "relay", "assist"):
            if hw.has(k):
                hw.found[k] = "gpio"
        if hw.has("voice"):
            self._boot_voice(hw)

    def _boot_voice(self, hw):
        # Imported only here: a board without a voice module never loads it.
        try:
            from ykt.ui.voice import Voice
            from ykt.rules.catalog import profile_from

            p = self.profile
            cfg = p.voice if p is not None else profile_from({"device": "-", "entry": 1,
                                                              "board": "bus_validator"}).voice
            uart, driver = hw.voice_uart()
            self.voice = Voice(uart, driver, cfg, p.tz_min if p is not None else 480)
        except (ImportError, ValueError, OSError) as e:
            self._err("voice", e)
            hw.missing["voice"] = "voice module not started: %s" % e

    def _boot_reader(self):
        from ykt.nfc.pn532 import PN532
        from ykt.nfc.reader import Reader

        hw = self.hw
        try:
            tr = hw.reader_transport()
        except OSError as e:
            self._err("reader", e)
            return
        self.reader = Reader(PN532(tr), rst_pin=hw.reader_reset_pin())
        ok = self.reader.start()
        r = self.board_cfg["reader"]
        if ok:
            v = self.reader.fw_version
            hw.found["reader"] = "PN532 v%d.%d over %s" % (v[1], v[2], r["transport"]) if v else "PN532"
            hw.missing.pop("reader", None)
        else:
            hw.missing.setdefault("reader", "PN532 did not answer over %s; retrying" % r["transport"])
        q = hw.qr_uart()
        if q is not None:
            try:
                from ykt.qr.qrscan import QRScanner

                self.qr = QRScanner(q)
            except ImportError:
                hw.missing["qr"] = "qr scanner support not in this build"

    def _boot_state(self):
        from ykt.rules.denylist import DenyList

        hw = self.hw
        pa, pb = hw.partition("dlist_a"), hw.partition("dlist_b")
        from ykt.compat import Scratch

        self.scratch = Scratch()   # made early, while the heap is whole: see Scratch
        if pa is not None and pb is not None:
            self.denylist = DenyList(pa, pb, scratch=self.scratch)
            hw.found["denylist"] = "v%d, %d entries" % (self.denylist.version, self.denylist.count)
        else:
            hw.missing["denylist"] = "no dlist_a/dlist_b partitions"
        jdir = join(self.root, "j")
        jpart = hw.partition("jrnl")
        try:
            try:
                os.mkdir(jdir)
            except OSError:
                pass
            if jpart is not None:
                # The ring on its own partition: a tap costs one 48-byte
                # program; erasing is done ahead, between taps (step()).
                from ykt.jring import RingJournal

                self.journal = RingJournal(jpart, self.secrets["jrnl_key"], join(jdir, "ack"))
                self._jidle = self.journal.idle
            else:
                # A flash layout without "jrnl": segments on littlefs.
                from ykt.journal import Journal

                self.journal = Journal(jdir, self.secrets["jrnl_key"])
            self.journal.open()
            hw.found["journal"] = "next seq %d, backlog %d" % (self.journal.next_seq, self.journal.backlog)
        except Exception as e:  # OSError, ValueError, either journal's JournalError: no journal, no green light
            self._err("journal", e)
            self.journal = None
            self._jidle = None
        self._load_tables()

    def _load_tables(self):
        """Decisions need the profile, catalog, fares and a token key; without
        them the device reads cards but refuses with 'not configured'. The
        files are where sync puts them, parsed as sync does (syncsetup.FILES)."""
        from ykt.net import syncsetup as S

        tok = self.secrets.get("tok_key")
        if self.profile is None or tok is None:
            self.missing["decisions"] = "not provisioned (profile or token key missing)"
            return
        try:
            cat = S.load(self.root, "catalog")
            ft = S.load(self.root, "fares")
            ents = None
            if exists(S.path(self.root, "entitlements")):
                ents = S.load(self.root, "entitlements")
        except (OSError, ValueError) as e:
            self._err("tables", e)
            self.missing["decisions"] = "tables missing or invalid"
            return
        from ykt.rules.decide import Decider
        from ykt.rules.recent import Recent

        self.decider = Decider(self.profile, cat, ft, ents, self.denylist,
                               Recent(self.profile.recent_cap), tok)
        self._reader_opts()
        self.found["decisions"] = "entry %d stop %d" % (self.profile.entry, self.profile.stop)
        self._load_shift()

    def _load_shift(self):
        """The driver shift open before a reset stays open (its sign-on tap is
        on flash; the next sign-off or another driver's sign-on ends it)."""
        p = join(self.root, _SHIFT_FILE)
        if not exists(p):
            return
        try:
            import struct
            from binascii import crc32

            b = read_file(p, 64)
            if len(b) == 20 and b[0:4] == b"YKSH" and crc32(b[0:16]) == struct.unpack_from("<I", b, 16)[0]:
                self.decider.shift = struct.unpack_from("<I", b, 4)[0]
                self.decider.shift_tok[:] = b[8:16]
                if self.decider.shift:
                    self.found["shift"] = "open since seq %d" % self.decider.shift
            else:
                self._err("shift", "shift file damaged: no shift open")
        except (OSError, ValueError) as e:
            self._err("shift", e)

    def _save_shift(self):
        """After a shift tap is on flash (not on a rider's tap path)."""
        import struct
        from binascii import crc32
        from ykt.fs import replace_file

        d = self.decider
        b = bytearray(20)
        b[0:4] = b"YKSH"
        struct.pack_into("<I", b, 4, d.shift)
        b[8:16] = d.shift_tok
        struct.pack_into("<I", b, 16, crc32(memoryview(b)[0:16]))
        try:
            replace_file(join(self.root, _SHIFT_FILE), b)
        except OSError as e:
            self._err("shift", e)

    def _boot_net(self):
        url = self.cfg.get("backoffice")
        from ykt.net.timesync import TimeSync

        ext = getattr(self.hw, "ext_rtc", None)
        self.ext_rtc = ext() if ext is not None else None
        self.clock = TimeSync(set_rtc=None if self.ext_rtc is None else self._set_rtc)
        if self.ext_rtc is not None:
            try:    # the date after a power cut away from the network (docs/time.md)
                self.clock.from_rtc(self.ext_rtc.read())
            except OSError as e:
                self._err("rtc", e)
        if not url or "dev_key" not in self.secrets:
            self.missing["network"] = "no back office configured"
            return
        wifi = self.cfg.get("wifi")
        if wifi:
            try:
                self.wlan = self.hw.wlan(wifi.get("ssid"), self.secrets.get("wifi_key", b"").decode())
            except (ImportError, OSError) as e:
                self._err("wifi", e)
        from ykt.net import httpc
        from ykt.net.uplink import Uplink
        from ykt.net.heartbeat import Heartbeat

        self.http = httpc.HttpClient(url)
        key = self.secrets["dev_key"]
        self.timeq = _TimeService(self.clock, self.http, self.device_id, key)
        if self.journal is not None:
            self.uplink = Uplink(self.journal, self.http, self.device_id, key, clock=self.clock,
                                 batch_max=self.cfg.get("batch_max", 100),
                                 max_age_ms=self.cfg.get("batch_age_s", 30) * 1000, scratch=self.scratch)
        self._boot_sync(key)
        self._boot_ota(key)
        self.heartbeat = Heartbeat(self.http, self.device_id, key, self._collect_heartbeat,
                                   clock=self.clock, interval_s=self.cfg.get("heartbeat_s", 300))
        self.found["network"] = url
        # Last: the uplink's buffers above are the large ones; the modem's are small.
        if getattr(self.hw, "modem", None) is not None and "modem" in self.hw.cfg:
            try:
                self.modem = self.hw.modem()
            except (ImportError, OSError, ValueError) as e:
                self._err("modem", e)
                self.missing["modem"] = "modem not started: %s" % e
        from ykt.net.link import Link

        self.link = Link(self.wlan, self.modem)

    def _boot_sync(self, key):
        try:
            from ykt.net import syncsetup
        except ImportError:
            return
        self.sync = syncsetup.make_sync(self.root, self.http, self.device_id, key, self.clock, self.denylist,
                                        self._swap_table, self._err, self.cfg.get("sync_interval_s", 60))

    def _reader_opts(self):
        """Read only what this entry's decisions use: the identity (card id,
        number, expiry) always; the birth date (EF06, ~16 ms at the card) only
        when the fare table has an age rule; the transport function where the
        catalog entry requires it (the decision refuses a card without). The
        generation is used by no decision, so it is never read."""
        d = self.decider
        if self.reader is None or d is None:
            return
        from ykt.nfc.sscard import OPT_BIRTH, OPT_TRANSIT
        from ykt.rules.catalog import F_REQ_TRANSIT

        f = d.fares
        o = OPT_BIRTH if (f is None or f.needs_birth) else 0
        e = d.catalog.get(self.profile.entry) if d.catalog is not None else None
        if e is not None and e.flags & F_REQ_TRANSIT:
            o |= OPT_TRANSIT
        self.reader.opts = o

    def _swap_table(self, kind, obj):
        """sync put a new table (fares, catalog, entitlements) or config on flash."""
        if kind == "config":
            return                # settings apply from the next boot
        if self.decider is not None:
            setattr(self.decider, kind, obj)   # the decider's attributes are named after the kinds
            self._reader_opts()
        else:
            self._load_tables()   # the first complete set makes the device able to decide

    def _boot_ota(self, key):
        if self.sync is None:
            return
        impl = sys.implementation
        v = impl.version
        iv = v[0] * 10000 + v[1] * 100 + (v[2] if len(v) > 2 else 0) if impl.name == "micropython" else None   # updater.interp_int
        self.ota = _OtaService(self.http, self.device_id, key, self.sync.keyring, self.root, self.hw.name, iv,
                               self.clock, self.cfg.get("ota_check_s", 900), self.hw.ota_partitions())

    def _boot_qr(self):
        """QR tokens verify against the same keyring sync keeps current (it is
        updated in place on rotation), with the device clock's tolerance."""
        try:
            from ykt.qr import qrtoken
            from ykt.net import syncsetup

            ring = self.sync.keyring if self.sync is not None else syncsetup.load(self.root, "keys")
            self.qr.verifier = qrtoken.Verifier(ring, self.clock, tol_s=self.cfg.get("qr_tol_s", 20))
        except (ImportError, OSError, ValueError) as e:
            self._err("qr", e)

    def _set_rtc(self, unix):
        try:
            self.ext_rtc.write(unix)
        except (OSError, ValueError) as e:
            self._err("rtc", e)

    def _collect_heartbeat(self):
        from ykt.net import heartbeat

        r = self.reader
        j = self.journal
        versions = {"dl": self.denylist.version if self.denylist else 0}
        if self.sync is not None:
            versions = self.sync.versions()
        oldest = j.oldest_pending_time if j is not None else None
        now = self.clock.now()
        return heartbeat.build(VERSION, self.device_id, self.clock.uptime_s, now, self.clock.trusted(),
                               versions, j.backlog if j else 0,
                               -1 if oldest is None else max(0, now - oldest),
                               j.cursor if j else 0,
                               {"ok": 0 if (r is None or r.fault) else 1,
                                "err": r.fault_count if r else 0, "resets": r.resets if r else 0},
                               self.errors, self.uplink.state_name() if self.uplink else "", self.link_used)

    # --- taps -------------------------------------------------------------
    def on_card(self, cr):
        tap = self.tap
        tap.clear()
        d = self.decider
        now = self.clock.now()
        trusted = self.clock.trusted()
        if d is None:
            tap.time = now
            tap.outcome = taprec.OUT_DENY
            tap.reason = taprec.R_NOT_CONFIGURED
            r = decision(FB_FAULT, M_NOT_CONFIGURED)
        else:
            r = d.decide(cr, now, trusted, tap)
        return self._outcome(tap, r, d, trusted)

    def companion_button(self):
        """The staff's companion button on a gate board: admits the companion
        of an entitled holder who just passed (recorded and shown like a
        tap); 0 when no companion window is open."""
        d = self.decider
        if d is None:
            return 0
        tap = self.tap
        tap.clear()
        trusted = self.clock.trusted()
        r = d.staff_companion(self.clock.now(), trusted, tap)
        if r is None:
            return 0
        return self._outcome(tap, r, d, trusted)

    def _outcome(self, tap, r, d, trusted):
        """Journal, feedback and voice of one decision."""
        if not trusted:
            tap.flags |= taprec.F_TIME_UNTRUSTED
        shift = tap.reason == taprec.R_SHIFT_ON or tap.reason == taprec.R_SHIFT_OFF
        if self.journal is not None:
            if tap.reason == taprec.R_SHIFT_ON:
                tap.shift = self.journal.next_seq   # a shift is named by its sign-on tap's seq
            try:
                self.journal.append(tap)
            except Exception as e:  # journal full or flash error: no green light without a record
                self._err("journal", e)
                r = decision(FB_FAULT, M_JOURNAL_FULL)
                shift = False
        elif shift:
            r = decision(FB_FAULT, M_JOURNAL_FULL)   # a shift needs its tap on flash
            shift = False
        self.taps += 1
        kind = r & KIND_MASK
        msg = r >> KIND_BITS
        self.feedback.show(kind, tap, msg)
        if self.voice is not None:
            self.voice.say(msg, tap.concession)   # after LED, buzzer and relay: one UART write
        if shift and d.shift_done(tap):
            self._save_shift()
        if self.on_event is not None:
            self.on_event(tap, kind, msg)
        return kind

    # --- loop -------------------------------------------------------------
    def step(self):
        """One loop iteration; bounded in time. Returns True if a tap happened."""
        self.wdt.feed()
        now = ticks_ms()
        busy = False
        a0 = mem_alloc()
        if self.reader is not None:
            if self.reader.poll(self.cr):
                self.on_card(self.cr)
                busy = True
        if self.qr is not None:
            if self.qr.poll(self.cr):
                self.on_card(self.cr)
                busy = True
        if busy:
            d = mem_alloc() - a0
            if d > self._tap_alloc:   # a collection during the tap makes d small or negative
                self._tap_alloc = d
        self.feedback.step(ticks_ms())
        if self.clock is not None:
            self.clock.step()
        if self.voice is not None:
            self.voice.step(now)
        ln = self.link
        if ln is not None:
            ln.step(now)
        online = ln is None or ln.isconnected()
        if online:
            if ln is not None:
                self.link_used = ln.name()
            for part in self._net:
                try:
                    part.step()
                except Exception as e:  # a network part must never stop the validator
                    self._err(type(part).__name__, e)
                    if hasattr(sys, "print_exception"):
                        sys.print_exception(e)
        if not busy and self._jidle is not None:
            try:
                self._jidle()     # erase the next sector before a tap needs it
            except OSError as e:
                self._err("journal", e)
        if self.ota is not None and self.ota.reboot_wanted and not busy and not self.feedback.busy():
            # A verified bundle is staged: restart into its trial between riders.
            self._reset()
        self.loops += 1
        if not busy and ticks_diff(now, self._gc_at) >= _GC_MS:
            # Collect when idle, so a tap rarely pays for a collection, and
            # sample the live heap for the heartbeat's high-water mark.
            self._gc_at = now
            gc.collect()
            live = mem_alloc()
            if live > self._live_peak:
                self._live_peak = live
            self.heap_peak = self._live_peak + self._tap_alloc
        return busy

    def run(self, until_ms=None):
        start = ticks_ms()
        while until_ms is None or ticks_diff(ticks_ms(), start) < until_ms:
            if not self.step():
                sleep_ms(_IDLE_MS)


def main(root="", until_ms=None, log=print):
    app = App(root, log)
    rep = app.boot()
    log("ykt-gate %s on %s: found %s" % (VERSION, rep["board"], ", ".join(sorted(rep["found"]))))
    for k in sorted(rep["missing"]):
        log("  missing %s: %s" % (k, rep["missing"][k]))
    app.run(until_ms)
    return app
