# A byte-accurate NXP PN532 (firmware v1.6) for the host simulator: host link
# frames over I2C (status byte), SPI (prefixes, LSB first) and HSU (wake-up),
# the commands a reader driver and nfcpy use, cards in an RF field, a timing
# model on the virtual clock, and faults on demand. Portable: CPython and the
# MicroPython unix port. Reference: NXP UM0701-02 (PN532 user manual) and
# AN10609; docs/pn532-simulator.md lists every modeling choice.
#
#   sim = PN532Sim()                 # or PN532Sim(timing={"cmd_us": 500})
#   sim.attach_i2c(0)                # I2C 0x24; or attach_spi(bus, cs) / attach_hsu(uart)
#   sim.attach_pins(rst=gpio, irq=gpio)
#   sim.field.present("ssc_nanning") # a card profile name or an rfcards object
#   sim.fault("nack_storm", count=3) ; sim.clear_faults()
#   sim.stats                        # commands, link bytes, modeled RF time
import vclock
from vhw import bus
from vhw import pn532frames as F
from vhw.pn532rf import RfCommands, DEFER
from vhw.rfcards import Field

# Default timing model (docs/design.md, "RF timing model"); PN532Sim(timing={...}) overrides keys.
DEFAULT_TIMING = {
    "cmd_us": 1000,            # PN532 command overhead: frame received -> answer ready
    "ack_us": 200,             # frame received -> ACK ready
    "activate_iso4_us": 8000,  # REQA .. ATS of an ISO14443-4 card
    "activate_uid_us": 3000,   # REQA .. SAK (UID-only card, or -4 card without RATS)
    "apdu_rf_us": 4000,        # RF framing of one APDU exchange
    "per_byte_us": 100,        # per APDU byte exchanged (command + answer)
    "select_us": 10000,        # card processing: SELECT by DF name
    "read_record_us": 6000,    # card processing: READ RECORD
    "apdu_other_us": 8000,     # card processing: any other APDU
    "block_us": 1000,          # one other RF exchange (R/S blocks, MIFARE, raw frames)
    "poll_us": 3000,           # one passive activation attempt that finds no card
    "hsu_wake_us": 800,        # HSU bytes arriving this soon after the wake byte are lost
    "boot_us": 2000,           # RSTPD_N high -> chip answers
}

FAULTS = ("silent", "stale_reply", "garbage", "nack_storm", "error_frame", "i2c_timeout",
          "card_removed", "two_cards", "slow_card", "rf_error", "hsu_gap", "hsu_max_baud")  # vhw.pn532faults

BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)
_WAKE_I2C = 0x80

# CIU registers generic stacks read (nfcpy: TxMode, RxMode, TxAuto, TxControl,
# FIFOData); values are the PN532 defaults for 106 kbps type A. Unknown -> 0.
_REGS = {0x6301: 0x3B, 0x6302: 0x80, 0x6303: 0x80, 0x6304: 0x80, 0x6305: 0x40, 0x6306: 0x10,
         0x6307: 0x84, 0x6308: 0x84, 0x6309: 0x4D, 0x630C: 0x62, 0x630F: 0xEB, 0x6316: 0x48,
         0x6317: 0x88, 0x6318: 0x20, 0x6319: 0x20, 0x633A: 0x00}
_RF_ITEM_LEN = {1: 1, 2: 3, 4: 1, 5: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}


class PN532Sim(RfCommands):
    def __init__(self, timing=None, name="pn532"):
        self.timing = dict(DEFAULT_TIMING)
        if timing:
            for k in timing:
                if k not in DEFAULT_TIMING:
                    raise ValueError("unknown timing key %r" % (k,))
                self.timing[k] = timing[k]
        self.name = name
        self.field = Field()
        self.field.listener = self._field_event
        self.transport = None
        self.port = None
        self.hsu_baud = 115200
        self.hsu_power_baud = 115200   # HSU rate at power-up and after RSTPD_N (UM0701 6.2.3)
        self.i2c_freq = 0          # >0: the sim adds 9 bits/freq of link time per I2C byte
        self.spi_baud = 0          # >0: same for SPI (0: the fake bus models line time)
        self.irq_gpio = None
        self.rst_gpio = None
        self.on_frame = None       # optional fn(direction "rx"/"tx", frame bytes) for tracing
        self._de = F.Deframer(self)
        self._evs = []
        self._hsu_pending = []
        self._link_ns = 0
        self._hsu_t = -(10 ** 12)
        self._spi = None
        self._spi_frame = None
        self._spi_pos = 0
        self._t = 0
        self._poll_ev = None
        self.clear_faults()
        self.reset_stats()
        self._powered = True
        self._power_on(0)

    # ------------------------------------------------------------------ state
    def _power_on(self, boot_us):
        for ev in self._evs:
            vclock.cancel(ev)
        self._evs = []
        self._out = []
        self._busy = False
        self._poll = None
        self._last_reply = None
        self._asleep = True        # LowVbat after power-up; HSU needs a wake-up
        self._wake_mask = 0xFF
        self._wake_until = None
        self._sleep_after = False
        self._sam = False
        self._use_irq = True
        self._params = 0x14        # fAutomaticRATS | fAutomaticATR_RES
        self._mx_passive = 0xFF    # MxRtyPassiveActivation: 0xFF = try forever
        self._mx_com = 0
        self._thru_tmo = 0x0A      # RFConfiguration item 2 RetryTimeout index (51.2 ms)
        self._regs = dict(_REGS)
        self._targets = []
        self._last_err = 0
        self._pending_baud = None
        self.hsu_baud = self.hsu_power_baud   # a SetSerialBaudRate does not survive a reset
        self._boot_until = vclock.now_us() + boot_us
        self._last_host_end = -(10 ** 12)
        self._silent = False
        self._de.reset()
        self.field.set_rf(False)
        self._irq_level(1)

    def reset(self):
        """Power-cycle the chip (what pulsing RSTPD_N does)."""
        self._power_on(self.timing["boot_us"])

    def reset_stats(self):
        self.stats = {"commands": {}, "frames_in": 0, "frames_out": 0, "acks_in": 0, "nacks_in": 0,
                      "bad_frames": 0, "bytes_in": 0, "bytes_out": 0, "rf_us": 0, "link_us": 0,
                      "apdus": 0, "activations": 0, "polls": 0, "errors": 0, "hsu_lost": 0,
                      "overlapped": 0, "unsupported": 0}

    def _count(self, k, n=1):
        self.stats[k] = self.stats.get(k, 0) + n

    def _booting(self):
        return not self._powered or vclock.now_us() < self._boot_until

    # -------------------------------------------------------------- transports
    def attach_i2c(self, bus_id, addr=0x24, freq=None):
        """I2C slave at addr (7-bit). The fake machine.I2C models line time;
        freq > 0 makes the sim add 9 bits / freq per byte itself (standalone use)."""
        bus.attach_i2c(bus_id, addr, self)
        self.transport = "i2c"
        if freq is not None:
            self.i2c_freq = freq

    def attach_spi(self, bus_id, cs_gpio, baud=None):
        bus.attach_spi(bus_id, cs_gpio, self)
        self.transport = "spi"
        if baud is not None:
            self.spi_baud = baud

    def attach_hsu(self, uart_id, port=None, baud=115200):
        """HSU on a UART. The fake UART hands us a port (uart_attach) whose
        deliver(buf) carries our bytes to the host at the line rate. baud:
        the rate at power-up (a real PN532: 115200; another value stands for
        a chip a host already moved there with SetSerialBaudRate)."""
        bus.attach_uart(uart_id, self)
        self.transport = "hsu"
        self.hsu_baud = baud
        self.hsu_power_baud = baud
        if port is None and hasattr(bus, "uart_port"):
            port = bus.uart_port(uart_id)  # the firmware already opened its UART
        if port is not None:
            self.uart_attach(port)

    def uart_attach(self, port):
        """The host side of the line: port.deliver(buf); port.baudrate if known."""
        self.port = port
        pend = self._hsu_pending
        self._hsu_pending = []
        for fr in pend:
            self._hsu_out(fr)

    uart_attached = uart_attach  # the name the fake machine.UART calls

    def _baud_mismatch(self):
        pb = getattr(self.port, "baudrate", None)
        if pb is not None and pb != self.hsu_baud:
            return True
        mx = self._f.get("max_baud")
        return mx is not None and self.hsu_baud > mx

    def _hsu_out(self, fr):
        if self._baud_mismatch():
            # the host listens at another speed: it decodes framing garbage
            fr = bytes((b ^ 0x5A) | 0x80 for b in fr)
        self.port.deliver(fr)

    def attach_pins(self, rst=None, irq=None):
        """RSTPD_N input (low = hard power-down/reset) and P70_IRQ output (low = answer ready)."""
        if rst is not None:
            self.rst_gpio = rst
            bus.on_pin(rst, self._rst_pin)
        if irq is not None:
            self.irq_gpio = irq
            self._irq_level(1)
            self._update_irq()

    def _rst_pin(self, value):
        if not value:
            self._powered = False
            self._power_on(0)
            self._powered = False
            self._irq_level(1)
        elif not self._powered:
            self._powered = True
            self._power_on(self.timing["boot_us"])

    def _link(self, n, per_sec, bits):
        if per_sec:
            self._link_ns += n * bits * 1000000000 // per_sec
            us = self._link_ns // 1000
            if us:
                self._link_ns -= us * 1000
                self._count("link_us", us)
                vclock.advance_us(us)

    # I2C (UM0701-02 6.2.4): every read starts with the status byte (bit 0 = ready);
    # a read past the status byte takes the whole frame (a partial read loses the
    # rest; the host sends NACK to get it again). No address ACK while in reset.
    def i2c_write(self, buf):
        f = self._f
        if f.get("i2c_w"):
            f["i2c_w"] -= 1
            raise OSError(110)
        if self._booting() or (self._asleep and self._sam and not self._wake_mask & _WAKE_I2C):
            raise OSError(19)
        self._count("bytes_in", len(buf))
        self._link(len(buf), self.i2c_freq, 9)
        self._wake()
        self._rx_bytes(buf, vclock.now_us())

    def i2c_read(self, n):
        f = self._f
        if f.get("i2c_r"):
            f["i2c_r"] -= 1
            raise OSError(110)
        if self._booting() or (self._asleep and self._sam and not self._wake_mask & _WAKE_I2C):
            raise OSError(19)
        self._wake()
        out = bytearray(n)
        if self._out and not self._silent and n:
            out[0] = 0x01
            if n > 1:
                fr = self._out.pop(0)
                m = min(n - 1, len(fr))
                out[1:1 + m] = fr[:m]
                self._taken(fr)
        self._count("bytes_out", n)
        self._link(n, self.i2c_freq, 9)
        return bytes(out)

    # SPI and HSU live in vhw.pn532spi / vhw.pn532hsu, imported on first use.
    def spi_select(self, active):
        from vhw import pn532spi
        pn532spi.spi_select(self, active)

    def spi_transfer(self, wire):
        from vhw import pn532spi
        return pn532spi.spi_transfer(self, wire)

    def uart_rx(self, buf):
        from vhw import pn532hsu
        pn532hsu.uart_rx(self, buf)

    def _wake(self):
        if self._asleep:
            self._asleep = False
            self._wake_until = None

    # --------------------------------------------------------- frame handling
    def _rx_bytes(self, buf, t):
        if self._silent:
            return
        for b in buf:
            self._t = t
            self._de.feed_byte(b, t)

    def _gap_drop(self, start_us):
        """Fault hsu_gap: a host frame starting too soon after the previous one is lost."""
        gap = self._f.get("gap")
        end = self._last_host_end
        self._last_host_end = self._t
        if gap and self.transport == "hsu" and start_us - end < gap:
            self._count("hsu_lost")
            return True
        return False

    def rx_ack(self):
        if self._gap_drop(self._de.start_us):
            return
        self._count("acks_in")
        self._trace("rx", F.ACK)
        self._abort()
        if self._pending_baud:
            self.hsu_baud = self._pending_baud  # SetSerialBaudrate takes effect on the host's ACK
            self._pending_baud = None

    def rx_nack(self):
        if self._gap_drop(self._de.start_us):
            return
        self._count("nacks_in")
        self._trace("rx", F.NACK)
        if self._last_reply is not None and not self._busy:
            self._emit(self._last_reply)

    def rx_bad(self, reason):
        self._count("bad_frames")

    def rx_frame(self, body, start_us):
        if self._gap_drop(start_us):
            return
        self._pending_baud = None   # a SetSerialBaudRate answered by a new command, not an ACK: no switch
        self._count("frames_in")
        self._trace("rx", F.frame(body))
        f = self._f
        if f.get("nack"):
            f["nack"] -= 1
            self._emit(F.NACK)
            return
        if self._busy:
            self._count("overlapped")
            self._abort()
        self._busy = True
        self._later(self.timing["ack_us"], lambda: self._emit(F.ACK))
        if len(body) < 2 or body[0] != F.TFI_HOST:
            self._finish(None, None, 0)
            return
        code = body[1]
        cmds = self.stats["commands"]
        cmds[code] = cmds.get(code, 0) + 1
        if f.get("errframe"):
            f["errframe"] -= 1
            self._finish(None, None, 0)
            return
        h = _HANDLERS.get(code)
        if h is None:
            self._count("unsupported")
            self._finish(None, None, 0)
            return
        res = h(self, body[2:])
        if res is DEFER:
            return
        if res is None:
            self._finish(None, None, 0)
            return
        data, us = res[0], res[1]
        card = res[2] if len(res) > 2 else None
        fail = res[3] if len(res) > 3 else None
        self._finish(code, data, us, card, fail)

    def _finish(self, code, data, rf_us, card=None, fail=None):
        """Schedule the answer after the command overhead plus modeled RF time.
        If the card it talked to left the field meanwhile, answer `fail`."""
        self._count("rf_us", rf_us)

        def done():
            self._busy = False
            if code is None:
                self._count("errors")
                self._emit(F.ERROR_FRAME, True)
                return
            d = data
            if card is not None and card not in self.field.cards and fail is not None:
                d = fail  # the card left the field while we talked to it
                if code == 0x4A:
                    self._targets = []
            self._emit(F.reply(code, d), True)

        self._later(self.timing["cmd_us"] + rf_us, done)

    def _later(self, us, fn):
        holder = []

        def run():
            if holder[0] in self._evs:
                self._evs.remove(holder[0])
            fn()

        ev = vclock.schedule(us, run)
        holder.append(ev)
        self._evs.append(ev)
        return ev

    def _abort(self):
        """Host ACK: the command in progress stops and unread output is dropped."""
        for ev in self._evs:
            vclock.cancel(ev)
        self._evs = []
        self._busy = False
        self._poll = None
        self._out = []
        self._update_irq()

    def _emit(self, fr, is_reply=False):
        if self._silent or not self._powered:
            return
        if is_reply:
            self._last_reply = fr
        f = self._f
        if f.get("inside") and is_reply and len(fr) > 7:
            f["inside"] -= 1
            b = bytearray(fr)
            b[len(b) - 3] ^= 0x5A  # a flipped data byte: the DCS no longer matches
            fr = bytes(b)
        pre = f.get("garbage")
        if pre:
            if f.get("garbage_n") is not None:
                f["garbage_n"] -= 1
                if f["garbage_n"] <= 0:
                    f["garbage"] = None
            fr = pre + fr
        self._count("frames_out")
        self._trace("tx", fr)
        if self.transport == "hsu":
            self._count("bytes_out", len(fr))
            if self.port is not None:
                self._hsu_out(fr)
            else:
                self._hsu_pending.append(fr)
            if self.irq_gpio is not None and self._use_irq:
                self._irq_level(0)
                self._later(len(fr) * 10000000 // self.hsu_baud + 1, lambda: self._irq_level(1))
            if self._sleep_after and is_reply:
                self._go_sleep()
            return
        self._out.append(fr)
        self._update_irq()

    def _taken(self, fr):
        """The host read a whole frame over I2C/SPI."""
        self._update_irq()
        if self._sleep_after and fr is self._last_reply:
            self._go_sleep()

    def _go_sleep(self):
        self._sleep_after = False
        self._asleep = True
        self.field.set_rf(False)

    def _trace(self, d, fr):
        if self.on_frame is not None:
            self.on_frame(d, fr)

    def _update_irq(self):
        if self.transport != "hsu":
            self._irq_level(0 if (self._out and self._use_irq and not self._silent) else 1)

    def _irq_level(self, v):
        if self.irq_gpio is not None and bus.level(self.irq_gpio) != v:
            bus.drive(self.irq_gpio, v)

    # ------------------------------------------------------------------ faults
    def fault(self, name, **params):
        """Inject a fault (names in FAULTS; parameters in docs/pn532-simulator.md)."""
        from vhw import pn532faults
        pn532faults.apply(self, name, params)

    def clear_faults(self):
        f = getattr(self, "_f", None)
        if f:
            for c, fr, ex, w, fwi in f.get("slow_saved", ()):
                c.slow_fraction, c.slow_exceed, c.wtx_count, c.fwi = fr, ex, w, fwi
        self._f = {}
        self._silent = False

    # -------------------------------------------------------------- RF helpers
    def _c_diagnose(self, d):
        if not d:
            return None
        t = d[0]
        if t == 0x00:
            return bytes(d), 0          # communication line test: echo NumTst + data
        if t in (0x01, 0x02, 0x07):
            return b"\x00", 0           # ROM, RAM, antenna self tests: OK
        if t == 0x04:
            self._rf_on()
            return (b"\x00" if self.field.cards else b"\x80"), self.timing["block_us"]
        if t == 0x06:
            tt = self._targets[0] if self._targets else None
            ok = tt is not None and tt.card in self.field.cards
            return (b"\x00" if ok else b"\x01"), self.timing["block_us"]
        return None

    def _c_version(self, d):
        return b"\x32\x01\x06\x07", 0   # IC PN532, ver 1, rev 6, support ISO18092|ISO14443B|ISO14443A

    def _c_status(self, d):
        out = bytearray((self._last_err, 0, len(self._targets)))
        for t in self._targets:
            out += bytes((t.tg, 0, 0, 0))
        out.append(0)
        return bytes(out), 0

    def _c_readreg(self, d):
        if len(d) < 2 or len(d) & 1:
            return None
        out = bytearray()
        for i in range(0, len(d), 2):
            out.append(self._regs.get((d[i] << 8) | d[i + 1], 0))
        return bytes(out), 0

    def _c_writereg(self, d):
        if len(d) < 3 or len(d) % 3:
            return None
        for i in range(0, len(d), 3):
            self._regs[(d[i] << 8) | d[i + 1]] = d[i + 2]
        return b"", 0

    def _c_gpio_read(self, d):
        return b"\xff\x07\x00", 0

    def _c_gpio_write(self, d):
        return b"", 0

    def _c_baud(self, d):
        if len(d) != 1 or d[0] >= len(BAUDS):
            return None
        self._pending_baud = BAUDS[d[0]]
        return b"", 0

    def _c_setparams(self, d):
        if len(d) != 1:
            return None
        self._params = d[0]
        return b"", 0

    def _c_sam(self, d):
        if not d or d[0] < 1 or d[0] > 4:
            return None
        self._sam = True
        self._use_irq = d[2] != 0 if len(d) > 2 else True
        self._update_irq()
        return b"", 0

    def _c_powerdown(self, d):
        if not d:
            return None
        self._wake_mask = d[0]
        self._sleep_after = True
        self._targets = []
        return b"\x00", 0

    def _c_rfconfig(self, d):
        if not d or _RF_ITEM_LEN.get(d[0]) != len(d) - 1:
            return None
        item = d[0]
        if item == 1:
            if d[1] & 1:
                self._rf_on()
            else:
                self._rf_off()
                self._targets = []
        elif item == 2:
            self._thru_tmo = d[3]
        elif item == 4:
            self._mx_com = d[1]
        elif item == 5:
            self._mx_passive = d[3]
        return b"", 0


_HANDLERS = {
    0x00: PN532Sim._c_diagnose,
    0x02: PN532Sim._c_version,
    0x04: PN532Sim._c_status,
    0x06: PN532Sim._c_readreg,
    0x08: PN532Sim._c_writereg,
    0x0C: PN532Sim._c_gpio_read,
    0x0E: PN532Sim._c_gpio_write,
    0x10: PN532Sim._c_baud,
    0x12: PN532Sim._c_setparams,
    0x14: PN532Sim._c_sam,
    0x16: PN532Sim._c_powerdown,
    0x32: PN532Sim._c_rfconfig,
    0x40: PN532Sim._c_exchange,
    0x42: PN532Sim._c_thru,
    0x44: PN532Sim._c_deselect,
    0x4A: PN532Sim._c_inlist,
    0x52: PN532Sim._c_release,
    0x54: PN532Sim._c_select,
}
