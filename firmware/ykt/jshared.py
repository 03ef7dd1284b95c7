# What both tap journals share: ykt.journal (segments on littlefs) and
# ykt.jring (the ring on a raw partition). The exceptions, and the upload
# readers over each journal's own _read(after, max_n, sink). A module of its
# own, so a board with the ring does not load the littlefs journal's code.
import struct

from ykt import taprec

MSG_FULL = "journal full - service required"


class JournalFull(Exception):
    def __init__(self, msg=MSG_FULL):
        super().__init__(msg)


class JournalError(Exception):
    def __init__(self, msg):
        super().__init__(msg)


class Readers:
    """Mixed into both journals; they provide _read, backlog, cursor,
    _otime and _otime_seq."""

    def pending(self, max_n, after=None):
        """Up to max_n Tap objects after the cursor (or after `after`), in seq
        order. For uplink batching; allocates the list and taps."""
        out = []
        self._read(after, max_n, lambda pt: out.append(taprec.unpack_from(pt)))
        return out

    def pending_into(self, buf, after=None):
        """Fill buf with plaintext taprecs (taprec.SIZE bytes each, format 2
        even from a format-1 segment) after the cursor (or after `after`);
        returns the count. No per-record allocation."""
        mv = memoryview(buf)
        pos = [0]
        sz = taprec.SIZE

        def sink(pt):
            mv[pos[0]:pos[0] + sz] = pt
            pos[0] += sz

        return self._read(after, len(buf) // sz, sink)

    @property
    def oldest_pending_time(self):
        """Device time of the oldest tap not yet acked, or None."""
        if self.backlog <= 0:
            return None
        if self._otime_seq != self.cursor:
            t = [None]

            def sink(pt):
                t[0] = struct.unpack_from("<I", pt, 4)[0]

            self._read(None, 1, sink)
            self._otime = t[0]
            self._otime_seq = self.cursor
        return self._otime
