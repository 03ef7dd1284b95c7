"""One connection to a validator over its USB serial port (or the virtual
device's pty), through mpremote's Python API: raw REPL, exec, file transfer,
hashes. Every technician command (deploy, provision, diagnose, logs) goes
through here, so errors are mapped to actionable sentences in one place
(the way ESPHome's espota2 maps its error codes).

Secrets: exec() never logs the code it sends; callers that send secrets pass
them through `secret_exec`, whose errors are masked."""
import ast
import contextlib
import errno
import io
import json
import os


def fw_path():
    """Put the firmware package (and the host clock it needs) on sys.path: the
    host tools use the same wire/journal/signed modules as the device."""
    import sys

    from ykt_tools import FIRMWARE, SIMHW

    for p in (SIMHW, FIRMWARE):
        if p not in sys.path:
            sys.path.insert(0, p)


class DeviceError(Exception):
    """An error with the sentence a technician acts on."""


def _friendly_open_error(port, e):
    text = str(e)
    if not os.path.exists(port):
        return ("no serial port %s: is the validator plugged in? List ports with "
                "`ls /dev/ttyUSB* /dev/ttyACM*` (Linux) or `mpremote connect list`." % port)
    if isinstance(e, PermissionError) or "Permission denied" in text or getattr(e, "errno", None) == errno.EACCES:
        return ("permission denied on %s: add yourself to the dialout group "
                "(`sudo usermod -aG dialout $USER`, then log in again)." % port)
    if "busy" in text.lower() or "lock" in text.lower() or getattr(e, "errno", None) == errno.EBUSY:
        return "%s is in use by another program (a serial monitor or mpremote?): close it and retry." % port
    return "cannot open %s: %s" % (port, text)


class Device:
    """with Device(port, baud) as d: d.exec("print(1)")"""

    def __init__(self, port, baud=115200, timeout_s=10):
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.t = None

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()

    def open(self):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        if not os.path.exists(self.port):
            raise DeviceError(_friendly_open_error(self.port, OSError(errno.ENOENT, "no such port")))
        try:
            # A read timeout on the port: mpremote's read_until starts with a
            # blocking read, which would wait forever on a silent device.
            self.t = SerialTransport(self.port, baudrate=self.baud, timeout=1)
        except (OSError, TransportError) as e:
            raise DeviceError(_friendly_open_error(self.port, e)) from None
        except Exception as e:  # pyserial's SerialException is an IOError subclass on most versions
            raise DeviceError(_friendly_open_error(self.port, e)) from None
        try:
            # Ctrl-C stops the running validator loop; raw REPL soft reset
            # gives a clean interpreter that does not run main.py. A busy
            # device may miss the first Ctrl-C (it is mid-boot): try again once.
            # mpremote prints what it got instead of the banner to stdout,
            # which would corrupt a command's --json output: keep it aside.
            seen = io.StringIO()
            with contextlib.redirect_stdout(seen):
                try:
                    self.t.enter_raw_repl(soft_reset=True, timeout_overall=self.timeout_s)
                except TransportError:
                    self.t.enter_raw_repl(soft_reset=True, timeout_overall=self.timeout_s)
        except TransportError:
            self.close()
            got = seen.getvalue().strip().splitlines()
            raise DeviceError("%s answered but no MicroPython REPL came up: is MicroPython flashed "
                              "(`ykt flash`), and is the baud rate right (--baud 115200)?%s"
                              % (self.port, " (it sent: %s)" % got[-1][:120] if got else "")) from None
        return self

    def close(self):
        if self.t is not None:
            try:
                if self.t.in_raw_repl:
                    self.t.exit_raw_repl()
                self.t.close()
            except Exception:  # closing a port that vanished (cable pulled) must not mask the real error
                pass
            self.t = None

    # --- execution ---------------------------------------------------------
    def exec(self, code):
        """Run code on the device; returns its stdout (str). A traceback on the
        device raises DeviceError with the device's last error line."""
        from mpremote.transport import TransportExecError, TransportError

        try:
            return self.t.exec(code).decode("utf-8", "replace")
        except TransportExecError as e:
            raise DeviceError("device error: %s" % _last_line(e.error_output)) from None
        except TransportError as e:
            raise DeviceError("lost the device on %s (%s): check the cable and retry" % (self.port, e)) from None
        except OSError as e:
            raise DeviceError("lost the device on %s (%s): check the cable and retry" % (self.port, e)) from None

    def secret_exec(self, code, secrets=()):
        """exec() for code that carries secrets: an error message never shows them."""
        try:
            return self.exec(code)
        except DeviceError as e:
            msg = str(e)
            for s in secrets:
                for form in (s, s.hex() if isinstance(s, bytes) else None, repr(s)):
                    if form:
                        msg = msg.replace(form if isinstance(form, str) else form.decode("latin-1"), "***")
            raise DeviceError(msg) from None

    def eval_json(self, code):
        """Run code that prints one JSON line last; returns the parsed object."""
        out = self.exec(code).strip().splitlines()
        if not out:
            raise DeviceError("device printed nothing")
        try:
            return json.loads(out[-1])
        except ValueError:
            raise DeviceError("unexpected device answer: %r" % out[-1][:120]) from None

    # --- files -------------------------------------------------------------
    def hashes(self, paths):
        """{path: sha256 hex or None (missing)} for the given device paths, in one exec."""
        code = ("import hashlib,binascii\nb=bytearray(512)\nm=memoryview(b)\nr={}\n"
                "for p in %r:\n try:\n  h=hashlib.sha256()\n  f=open(p,'rb')\n"
                "  while True:\n   n=f.readinto(b)\n   if not n:\n    break\n   h.update(m[:n])\n"
                "  f.close()\n  r[p]=binascii.hexlify(h.digest()).decode()\n except OSError:\n  r[p]=None\n"
                "import json\nprint(json.dumps(r))\n" % (list(paths),))
        return self.eval_json(code)

    def mkdirs(self, path):
        parts = [p for p in path.split("/") if p]
        code = "import os\ncur=''\nfor p in %r:\n cur=cur+'/'+p if cur else p\n try:\n  os.mkdir(cur)\n except OSError:\n  pass\n" % (parts,)
        self.exec(code)

    def write(self, path, data, chunk=1024):
        """Write bytes to a device file, through a temp name and a rename so a
        cut cable never leaves half a module behind."""
        d = path.rsplit("/", 1)[0] if "/" in path else ""
        if d:
            self.mkdirs(d)
        tmp = path + ".tmp"
        self.exec("f=open(%r,'wb')\nw=f.write" % tmp)
        for i in range(0, len(data), chunk):
            self.exec("w(%r)" % bytes(data[i:i + chunk]))
        self.exec("f.close()\nimport os\ntry:\n os.remove(%r)\nexcept OSError:\n pass\nos.rename(%r,%r)" % (path, tmp, path))

    def read(self, path):
        """Bytes of a device file (None if missing)."""
        out = self.exec("import binascii\ntry:\n f=open(%r,'rb')\nexcept OSError:\n print('NONE')\nelse:\n"
                        " while True:\n  c=f.read(512)\n  if not c:\n   break\n  print(binascii.hexlify(c).decode())\n"
                        " f.close()\n print('END')" % path)
        lines = out.strip().splitlines()
        if lines and lines[-1] == "NONE":
            return None
        if not lines or lines[-1] != "END":
            raise DeviceError("short read of %s" % path)
        return bytes.fromhex("".join(lines[:-1]))

    def remove(self, path):
        self.exec("import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass" % path)

    def listdir(self, path=""):
        return ast.literal_eval(self.exec("import os\nprint(repr(sorted(os.listdir(%r))))" % path).strip())

    def soft_reset(self):
        """Ctrl-D from the friendly REPL: the board reboots and runs main.py."""
        self.t.exit_raw_repl()
        self.t.serial.write(b"\x04")


def _last_line(text):
    lines = [x for x in str(text).strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else "unknown error"
