"""`ykt logs pull/upload`: taps off a device that cannot reach the network.

pull: a script exec'd on the device opens its journal as the app does (the
ring on the "jrnl" partition, else the littlefs segments), reads the taps
after the upload cursor (pending) and seals them, on the
device, into ordinary authenticated batches (ykt.net.wire.encode_batch with the
device key read from NVS there): the key never leaves the device. The host
writes one file per batch, named <device>-<first seq>-<last seq>.yktb, plus
nothing else. The device's cursor is not moved: the taps stay on the device
until the back office acknowledges them.

upload: POST each file to <backoffice>/v1/taps, exactly as the device would.
The back office stores each (device, seq) once, so uploading a file twice,
or the device uploading the same taps itself later, counts nothing twice.
Uploaded files are renamed *.done."""
import json
import os
import urllib.error
import urllib.request

from ykt_tools.device.devconn import DeviceError

BATCH = 100

_PULL = """import json,binascii,esp32
from ykt.net import wire
with open('config.json') as f:
 dev=json.load(f)['device_id']
n=esp32.NVS('ykt')
b=bytearray(64)
jk=bytes(b[:n.get_blob('jrnl_key',b)])
dk=bytes(b[:n.get_blob('dev_key',b)])
del n,b
p=esp32.Partition.find(esp32.Partition.TYPE_DATA,label='jrnl')
if p:
 from ykt.jring import RingJournal
 j=RingJournal(p[0],jk,'j/ack')
else:
 from ykt.journal import Journal
 j=Journal('j',jk)
del p
j.open()
print(json.dumps({'device':dev,'cursor':j.cursor,'next_seq':j.next_seq}))
after=None
while True:
 t=j.pending(BATCH,after)
 if not t:
  break
 body=wire.encode_batch(dev,dk,t)
 print('B %d %d %s'%(t[0].seq,t[-1].seq,binascii.hexlify(body).decode()))
 after=t[-1].seq
 t=None
j.close()
print('END')
"""


def pull(dev, outdir, batch=BATCH):
    """Copy the device's not-yet-uploaded taps to outdir. Returns a report."""
    out = dev.exec(_PULL.replace("BATCH", str(int(batch))))
    lines = out.strip().splitlines()
    if not lines or lines[-1].strip() != "END":
        raise DeviceError("log pull did not complete (%s)" % (lines[-1][:80] if lines else "no output"))
    head = json.loads(lines[0])
    os.makedirs(outdir, exist_ok=True)
    files, taps = [], 0
    for ln in lines[1:-1]:
        tag, first, last, hx = ln.split()
        assert tag == "B"
        name = "%d-%010d-%010d.yktb" % (head["device"], int(first), int(last))
        path = os.path.join(outdir, name)
        if not os.path.exists(path + ".done"):
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(bytes.fromhex(hx))
            os.replace(tmp, path)
        files.append(name)
        taps += int(last) - int(first) + 1
    return {"device": head["device"], "cursor": head["cursor"], "next_seq": head["next_seq"],
            "files": len(files), "taps": taps, "dir": outdir}


def upload(indir, backoffice, timeout=20):
    """POST every pending batch file in indir; returns counts. Files the back
    office has fully stored (or seen before: replay) become *.done."""
    names = sorted(n for n in os.listdir(indir) if n.endswith(".yktb"))
    rep = {"files": 0, "new": 0, "dup": 0, "replayed": 0, "failed": []}
    url = backoffice.rstrip("/") + "/v1/taps"
    for n in names:
        path = os.path.join(indir, n)
        with open(path, "rb") as f:
            body = f.read()
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                code, hdr = r.status, r.headers
        except urllib.error.HTTPError as e:
            code, hdr = e.code, e.headers
        except (urllib.error.URLError, OSError) as e:
            raise DeviceError("cannot reach the back office at %s (%s): check the address and the network; "
                              "nothing was lost, run the upload again" % (backoffice, getattr(e, "reason", e)))
        err = hdr.get("X-YKT-Error") if hdr else None
        if code == 200:
            rep["new"] += int(hdr.get("X-YKT-New", 0))
            rep["dup"] += int(hdr.get("X-YKT-Dup", 0))
        elif err == "replay":
            rep["replayed"] += 1         # this very file was uploaded before
        else:
            rep["failed"].append("%s: HTTP %d %s" % (n, code, _advice(err)))
            continue
        os.replace(path, path + ".done")
        rep["files"] += 1
    return rep


_ADVICE = {"unknown_device": "device unknown or deactivated in the back office",
           "bad_mac": "the file was not sealed with this device's current key (re-provisioned since?)",
           "seq_ahead": "earlier taps are missing in the back office: upload older files first",
           "bad_magic": "not a batch file", "truncated": "file damaged", "malformed": "file damaged"}


def _advice(err):
    return _ADVICE.get(err or "", err or "unexpected answer")
