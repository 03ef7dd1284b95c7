"""`ykt diagnose`: what is wrong with this validator, and what to do about it.

A small script is exec'd on the device (main.py is not running: the raw REPL
soft reset stops it). It boots the firmware's App without running its loop,
so the same code path as in service brings the reader, journal and network
parts up, then polls the reader for a test card for a bounded time. It
prints one JSON line (no secret, no card number: only the card's kind and
error code). The host turns that into findings, each with an action."""
from ykt_tools.device.devconn import DeviceError  # noqa: F401  (re-exported for callers)

# Run on the device. Bounded: at most POLLS reader polls.
_SCRIPT = """import gc,json,sys,os
gc.collect()
r={'ok':True}
try:
 import ykt
 r['version']=ykt.VERSION
except ImportError as e:
 r['ok']=False
 r['fatal']='no firmware: %s'%e
if r['ok']:
 from ykt import app as A
 from ykt.compat import sleep_ms,mem_free,mem_alloc
 a=A.App('',lambda m:None)
 try:
  rep=a.boot()
 except Exception as e:
  r['ok']=False
  r['fatal']='boot failed: %s: %s'%(type(e).__name__,e)
  rep=None
 if rep is not None:
  r['board']=rep.get('board')
  r['reset_cause']=rep.get('reset_cause')
  r['found']=rep.get('found')
  r['missing']=rep.get('missing')
  r['provisioned']=rep.get('provisioned')
  r['device_id']=a.device_id
  rd=a.reader
  if rd is not None:
   v=rd.fw_version
   r['pn532']=None if v is None else '%d.%d'%(v[1],v[2])
   r['reader_fault']=rd.fault
   card=None
   for i in range(POLLS):
    if rd.poll(a.cr):
     c=a.cr
     card={'kind':c.kind,'error':c.error,'uid_len':c.uid_len}
     break
    sleep_ms(10)
   r['card']=card
   r['rf']=rd.fault is False and r['pn532'] is not None
  j=a.journal
  if j is not None:
   r['journal']={'next_seq':j.next_seq,'backlog':j.backlog,'cursor':j.cursor}
  c=a.clock
  if c is not None:
   r['clock']={'now':c.now(),'trusted':c.trusted()}
  try:
   with open('data/versions.json') as f:
    r['tables']=json.load(f)
  except (OSError,ValueError):
   r['tables']=None
  r['errors']=[list(e) for e in a.errors]
 gc.collect()
 r['mem_free']=mem_free()
 r['mem_alloc']=mem_alloc()
r['mpy']=sys.version
print(json.dumps(r))
"""

LOW_HEAP = 24 * 1024
CLOCK_MIN = 1735689600          # 2025-01-01: a clock before this was never set


def run(dev, polls=150):
    """Exec the self-test; returns the device's raw report."""
    return dev.eval_json(_SCRIPT.replace("POLLS", str(int(polls))))


def findings(r):
    """[(severity, problem, what to do)] from a report; severity ok|warn|fail."""
    out = []
    if not r.get("ok"):
        out.append(("fail", r.get("fatal", "firmware did not start"),
                    "deploy the firmware: ykt deploy --port P --board B"))
        return out
    miss = r.get("missing") or {}
    if r.get("pn532") is None:
        out.append(("fail", "PN532 reader does not answer (%s)" % miss.get("reader", "no firmware version"),
                    "check the reader cable and its power, the I2C/SPI/HSU switches on the PN532 board, "
                    "and the pins in the board file"))
    else:
        out.append(("ok", "PN532 firmware %s, RF field on" % r["pn532"], ""))
        c = r.get("card")
        if c is None:
            out.append(("warn", "no test card read",
                        "hold the test card flat on the reader and run diagnose again; if it still fails, "
                        "check the antenna cable and that nothing metallic is near the antenna"))
        elif c.get("error"):
            out.append(("warn", "test card seen but the read failed (error %d)" % c["error"],
                        "hold the card still for a second; a repeated failure means a weak antenna or a damaged card"))
        else:
            out.append(("ok", "test card read (kind %d)" % c.get("kind", 0), ""))
    if not r.get("provisioned"):
        why = miss.get("decisions", "no profile or keys")
        if "tables" in why:
            out.append(("fail", "fare tables not on the device yet (%s)" % why,
                        "let it sync with the back office (publish the catalog and the fares for its entry there)"))
        else:
            out.append(("fail", "not provisioned: %s" % why, "run ykt provision"))
    if "network" in miss:
        out.append(("warn", "network: %s" % miss["network"], "provision the back office address and Wi-Fi"))
    j = r.get("journal")
    if j is None:
        out.append(("fail", "journal did not open", "see the errors below; the flash may be full or damaged"))
    elif j["backlog"] > 1000:
        out.append(("warn", "%d taps not uploaded yet" % j["backlog"],
                    "bring the device into coverage, or copy them with ykt logs pull"))
    clk = r.get("clock")
    if clk and clk["now"] < CLOCK_MIN:
        out.append(("warn", "clock not set (%d)" % clk["now"], "connect to the back office once: it sets the time"))
    elif clk and not clk["trusted"]:
        out.append(("warn", "clock not confirmed by the back office yet", "it is set at the next successful sync"))
    if r.get("mem_free", 1 << 30) < LOW_HEAP:
        out.append(("warn", "low free heap: %d bytes" % r["mem_free"], "report to engineering with this output"))
    for where, what in r.get("errors") or []:
        out.append(("warn", "error in %s: %s" % (where, what), "see docs/technician.md, troubleshooting"))
    return out
