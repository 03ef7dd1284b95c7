# The firmware's file-system helpers, defined once. Everything on flash that
# must survive a power cut as "old or new, never neither" (data/keys.bin, the
# device's trust anchor; the tables; versions.json; the journal's ack; OTA
# records) is written with replace_file().
#
# replace_file(path, data): write path + ".tmp", flush (on MicroPython flush()
# is lfs_file_sync; CPython also fsyncs), close, then rename the temp file
# OVER the old one. littlefs commits a rename atomically, replacing the
# target; POSIX rename does too; MicroPython's FAT driver removes the target
# itself when the rename finds it. The old file is never removed first: a cut
# between a remove and the rename would leave only the .tmp.
#
# So a leftover .tmp after a cut means the rename never happened and the old
# file is the valid one: readers never look at a .tmp, and remove_leftovers()
# (boot) deletes them. firmware/otaboot.py keeps its own copy of replace_file
# (it runs before any ykt module may be imported); tests/fw/t_fs.py checks
# the two behave the same.
import os

TMP = ".tmp"


def join(root, name):
    """root "" is the current directory (the device's flash root)."""
    return name if not root else root + "/" + name


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def replace_file(path, data):
    """Atomically replace path with data (bytes-like), or with what
    data(f) writes when data is a callable (large content, streamed)."""
    tmp = path + TMP
    f = open(tmp, "wb")
    try:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
        if hasattr(os, "fsync"):        # CPython; MicroPython's flush() already synced
            os.fsync(f.fileno())
    except Exception:  # not `finally`: after a power cut (DeviceReset) nothing runs
        f.close()
        raise
    f.close()
    os.rename(tmp, path)


def remove_leftovers(dirpath):
    """Delete every *.tmp in dirpath (not recursive): each is a replacement
    that never reached its rename, so the file it was meant to replace is
    still the valid one. -> names removed."""
    out = []
    try:
        names = os.listdir(dirpath if dirpath else ".")
    except OSError:
        return out
    for n in names:
        if n.endswith(TMP):
            try:
                os.remove(join(dirpath, n))
                out.append(n)
            except OSError:
                pass
    return out
