# Host half of the OTA bundle format: build a bundle payload and read one back
# (the release tool, the back office's upload check, the tests). The format
# and its constants are defined once, in the firmware (ykt.ota.updater: MAGIC,
# FORMAT, MAN_SIZE, the path rule), whose Installer is the device's parser;
# the device never loads this module. tests/fw/t_bundle.py pins the bytes and
# checks the Installer reads what this writes. Portable (CPython, MicroPython).
#
# Payload (little-endian):
#  off size field
#   0   4   magic "YKTB"
#   4   1   format (1)
#   5   1   board count B (0 = any board)
#   6   2   file count F
#   8   4   minimum interpreter version, major*10000 + minor*100 + micro
#  12  16   version string, ASCII, NUL-padded ("1.4.2")
#  28   .   B x (u8 length, board name)
#   .   .   F x (u8 length, path relative to the slot, u32 size, size bytes)
import struct

from ykt.ota import updater as ota


class BundleError(ValueError):
    """A payload that is not a well-formed bundle (code as the device's: bad_manifest, bad_path)."""

    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code


def manifest(version, min_interp, boards, nfiles):
    """The payload's fixed part and board list."""
    vs = version.encode()
    if len(vs) > 16:
        raise ValueError("version string too long")
    ota.ver_int(version)
    b = bytearray(ota.MAGIC)
    b.append(ota.FORMAT)
    b.append(len(boards))
    b.extend(struct.pack("<HI", nfiles, min_interp))
    b.extend(vs + b"\x00" * (16 - len(vs)))
    for name in boards:
        n = name.encode()
        b.append(len(n))
        b.extend(n)
    return bytes(b)


def file_entry(path, size):
    """Header of one file entry; the file's bytes follow it. Paths follow the
    device's rule (ykt.ota.updater.check_path)."""
    p = path.encode()
    try:
        ota.check_path(path)
    except ota.OtaError as e:
        raise BundleError(e.code, path)
    return bytes([len(p)]) + p + struct.pack("<I", size)


def payload(version, files, min_interp, boards=()):
    """files: [(slot path, bytes)] -> the whole payload."""
    out = bytearray(manifest(version, min_interp, list(boards), len(files)))
    for p, data in files:
        out += file_entry(p, len(data))
        out += data
    return bytes(out)


def parse(p):
    """A payload -> {"version", "min_interp", "boards", "files": [(path, bytes)]};
    raises BundleError as the device would refuse it."""
    p = bytes(p)
    if len(p) < ota.MAN_SIZE or p[:4] != ota.MAGIC or p[4] != ota.FORMAT:
        raise BundleError("bad_manifest", "not a bundle")
    nb = p[5]
    nfiles, mi = struct.unpack_from("<HI", p, 6)
    vs = p[12:28].rstrip(b"\0").decode()
    off = ota.MAN_SIZE
    boards = []
    files = []
    try:
        for _ in range(nb):
            n = p[off]
            boards.append(p[off + 1:off + 1 + n].decode())
            off += 1 + n
        for _ in range(nfiles):
            n = p[off]
            if off + 5 + n > len(p):
                raise IndexError()
            path = p[off + 1:off + 1 + n].decode()
            size = struct.unpack_from("<I", p, off + 1 + n)[0]
            off += 5 + n
            if off + size > len(p):
                raise BundleError("bad_manifest", "file beyond the payload")
            ota.check_path(path)
            files.append((path, p[off:off + size]))
            off += size
    except (IndexError, ValueError) as e:      # ValueError: a name that is not UTF-8
        if isinstance(e, BundleError):
            raise
        raise BundleError("bad_manifest", "payload ends early")
    except ota.OtaError as e:
        raise BundleError(e.code, e.args[1] if len(e.args) > 1 else "")
    if off != len(p):
        raise BundleError("bad_manifest", "bytes after the last file")
    return {"version": vs, "min_interp": mi, "boards": boards, "files": files}
