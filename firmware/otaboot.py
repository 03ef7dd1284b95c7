# Boot code that stays OUTSIDE the A/B application slots: it chooses which
# application version runs, runs a freshly installed one on trial, and brings
# the device back to the last good version by itself.
#
# Layout (root = "" on the device):
#   ykt/ ...            factory application (deployed over USB or frozen): slot "f"
#   app/a/ykt/ ...      slot "a"      app/b/ykt/ ...   slot "b"
#   app/state.json      which slot is active, which is pending, the trial boot
#                       count and the last rollback (replaced atomically)
#
# state.json: {"a": active slot, "av": its version, "p": pending slot or "",
#   "pv": pending version, "n": boots of the pending slot so far,
#   "rb": [version, reason] of the last rollback or null}
#
# Rules (power may fail at any instant; every decision is one atomic rename):
# - The updater writes the new version into the slot that is not active and
#   only then stages it (state "p"). A cut before staging leaves the old state.
# - At boot a pending slot runs on trial: the boot count is persisted BEFORE
#   its code is imported and the watchdog is armed first, so a hang anywhere
#   resets. A watchdog reset during a trial, a crash at import or boot, an
#   exception in the loop, a failed self-check or no pass within TRIAL_MS
#   rolls back; so do MAX_TRIES trial boots without a pass (power cuts).
# - The pending slot becomes active only when the self-check passes: reader
#   answering, journal writable, and on a provisioned device deny list, fares
#   and catalog loaded and a decision computed.
# - A whole firmware image (ykt.ota.image: interpreter + frozen application,
#   into the next ESP32 OTA partition) is on trial while app/fw.json names the
#   running partition: its own application (slot "f") runs under the same
#   self-check; a pass marks the image valid and makes "f" the active slot at
#   the image's version; a failure resets while the image is still pending, so
#   the ESP-IDF bootloader goes back to the previous image, recorded as a
#   rollback of that version.
# Deliberately imports nothing from ykt before choosing (ykt lives in slots).
import gc
import json
import os
import sys

try:
    import vclock as _clk  # host simulator: the shared virtual clock
except ImportError:
    import time as _clk

MAX_TRIES = 3
TRIAL_MS = 60000       # the self-check must pass within this (virtual) time
CHECK_MS = 500         # self-check retried this often while on trial
WDT_MS = 8000
SLOTS = ("f", "a", "b")


def _join(root, name):
    return name if not root else root + "/" + name


def state_path(root):
    return _join(root, "app/state.json")


def slot_dir(root, slot):
    """Directory that holds the slot's ykt package ('' = the root itself)."""
    if slot == "f":
        return root
    return _join(root, "app/" + slot)


def _default():
    return {"a": "f", "av": "", "p": "", "pv": "", "n": 0, "rb": None}


def load(root):
    st = _default()
    try:
        with open(state_path(root)) as f:
            d = json.loads(f.read(1024))
        if d.get("a") in SLOTS and d.get("p", "") in ("", "a", "b"):
            st.update(d)
    except (OSError, ValueError):
        pass   # no state yet (factory) or unreadable: the factory app runs
    return st


def _mkdir(p):
    try:
        os.mkdir(p)
    except OSError:
        pass


def replace_file(path, data):
    """ykt.fs.replace_file, copied: this module may import nothing from ykt
    before it has chosen the slot. Write path.tmp, flush (+ fsync on CPython),
    rename over path; never remove the old file first. tests/fw/t_fs.py checks
    both copies give the same bytes and leave the same files."""
    tmp = path + ".tmp"
    f = open(tmp, "wb")
    try:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
        if hasattr(os, "fsync"):
            os.fsync(f.fileno())
    except Exception:  # not `finally`: after a power cut (DeviceReset) nothing runs
        f.close()
        raise
    f.close()
    os.rename(tmp, path)


def save(root, st):
    """Atomic replace: readers see the old or the new state, never a mix."""
    _mkdir(_join(root, "app"))
    replace_file(state_path(root), json.dumps(st).encode())


def install_slot(root):
    """The slot an update may be written into: never the active one."""
    a = load(root)["a"]
    return "b" if a == "a" else "a"


def stage(root, slot, version):
    """Called by the updater once the slot holds a verified version."""
    st = load(root)
    if slot == st["a"] or slot not in ("a", "b"):
        raise ValueError("cannot stage the active slot")
    st["p"] = slot
    st["pv"] = version
    st["n"] = 0
    save(root, st)


def unstage(root, slot):
    """The slot is about to be overwritten: it must not be pending any more."""
    st = load(root)
    if st["p"] == slot:
        st["p"] = ""
        st["pv"] = ""
        st["n"] = 0
        save(root, st)


def status(root):
    st = load(root)
    return {"active": st["a"], "version": st["av"], "pending": st["pv"] if st["p"] else "",
            "trial": st["n"], "rolled_back": st["rb"]}


def rollback(root, reason, log=None):
    st = load(root)
    if not st["p"]:
        return st
    st["rb"] = [st["pv"], reason[:60]]
    st["p"] = ""
    st["pv"] = ""
    st["n"] = 0
    save(root, st)
    if log:
        log("ota: version %s rolled back (%s); running %s" % (st["rb"][0], reason, st["av"] or "factory"))
    return st


def confirm(root, log=None):
    """The trial passed: the pending slot becomes the active one."""
    st = load(root)
    if not st["p"]:
        return False
    st["a"] = st["p"]
    st["av"] = st["pv"]
    st["p"] = ""
    st["pv"] = ""
    st["n"] = 0
    st["rb"] = None
    save(root, st)
    if log:
        log("ota: version %s confirmed" % st["av"])
    return True


def select(root, cause="power", log=None):
    """-> (slot, on_trial). Persists the trial count before returning."""
    st = load(root)
    if st["p"]:
        if cause == "wdt" and st["n"] > 0:
            st = rollback(root, "watchdog", log)
        elif st["n"] >= MAX_TRIES:
            st = rollback(root, "no pass in %d boots" % MAX_TRIES, log)
        else:
            st["n"] += 1
            save(root, st)
            return st["p"], True
    return st["a"], False


def enter(root, slot):
    """Make `import ykt` load the slot's package: drop loaded ykt modules and
    put the slot's directory first on the path (other slots removed)."""
    for name in list(sys.modules):
        if name == "ykt" or name.startswith("ykt."):
            del sys.modules[name]
    for s in ("a", "b"):
        d = slot_dir(root, s)
        while d in sys.path:
            sys.path.remove(d)
    if slot != "f":
        sys.path.insert(0, slot_dir(root, slot))


def leave(root):
    """Back to the factory package (tests and the technician's REPL)."""
    enter(root, "f")


def _exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def selfcheck(app, root):
    """None when the running application can take taps, else the reason."""
    r = app.reader
    if r is None or getattr(r, "fault", True) or not getattr(r, "fw_version", None):
        return "reader not answering"
    j = app.journal
    if j is None:
        return "journal not open"
    probe = _join(root, "j/.probe")
    try:
        f = open(probe, "wb")
        f.write(b"ok")
        f.close()
        os.remove(probe)
    except OSError as e:
        return "journal not writable (%s)" % (e.args[0] if e.args else e)
    if _exists(_join(root, "data/profile.json")):
        d = app.decider
        if d is None or getattr(d, "fares", None) is None or getattr(d, "catalog", None) is None:
            return "fares or catalog not loaded"
        if app.denylist is None:
            return "deny list not loaded"
        return _probe_decision(app, d)
    return None


def _probe_decision(app, d):
    # A UID-only card: the decider's whole front runs (deny list, profile)
    # and it refuses it; nothing is journaled and no fare is committed.
    cr = type(app.cr)()
    cr.kind = 2            # cardread.KIND_UID_ONLY
    cr.uid_len = 4
    tap = type(app.tap)()
    try:
        d.decide(cr, app.clock.now() if app.clock else 0, False, tap)
    except Exception as e:
        return "decision failed (%s)" % type(e).__name__
    return None


def _reset():
    import machine

    machine.reset()


def _wdt(ms=WDT_MS):
    try:
        import machine

        return machine.WDT(timeout=ms)
    except (ImportError, AttributeError, ValueError):
        return None


def _cause():
    try:
        import machine

        c = machine.reset_cause()
        return "wdt" if c == getattr(machine, "WDT_RESET", -1) else "power"
    except (ImportError, AttributeError):
        return "power"


def _fail(root, why, log):
    rollback(root, why, log)
    _reset()   # a clean start on the previous version (hardware re-initialised)


def _err(e):
    return "%s %s" % (type(e).__name__, e.args[0] if e.args else "")


def trial(app, root, log=None, limit_ms=TRIAL_MS):
    """Run the loop until the self-check passes (-> None) or the reason it
    failed. Exceptions from the application's loop count as failures."""
    start = _clk.ticks_ms()
    last = _clk.ticks_add(start, -CHECK_MS)
    why = "self-check not run"
    while _clk.ticks_diff(_clk.ticks_ms(), start) < limit_ms:
        try:
            busy = app.step()
        except Exception as e:
            return "loop: " + _err(e)
        now = _clk.ticks_ms()
        if _clk.ticks_diff(now, last) >= CHECK_MS:
            last = now
            why = selfcheck(app, root)
            if why is None:
                return None
        if not busy:
            _clk.sleep_ms(20)
    return "self-check: " + why


def vstr(v):
    """An envelope version (ota.ver_int) as "MAJOR.MINOR.PATCH"."""
    return "%d.%d.%d" % (v // 1000000, v // 1000 % 1000, v % 1000)


def _image_check(root, log):
    """A firmware image written by ykt.ota.image is on trial when the running
    OTA partition is the one it set to boot; if another one runs, the ESP-IDF
    bootloader rolled it back: record that (as an application rollback is,
    so the updater does not fetch it again and the back office sees it).
    -> the record while on trial."""
    p = _join(root, "app/fw.json")
    try:
        with open(p) as f:
            rec = json.loads(f.read(256))
    except (OSError, ValueError):
        return None
    try:
        import esp32

        lab = esp32.Partition(esp32.Partition.RUNNING).info()[4]
    except (ImportError, OSError, AttributeError):
        lab = None
    if lab is not None and lab == rec.get("part"):
        return rec
    st = load(root)
    v = vstr(rec.get("v", 0))
    st["rb"] = [v, "image not confirmed: bootloader went back"]
    save(root, st)
    os.remove(p)
    if log:
        log("ota: firmware image %s rolled back by the bootloader" % v)
    return None


def _image_valid(root, rec, log):
    """The image passed its trial: the bootloader keeps it, and its own
    (frozen) application is the active one from now on, at the image's version."""
    import esp32

    try:
        esp32.Partition.mark_app_valid_cancel_rollback()
    except OSError:
        pass        # bootloader without rollback support: nothing to cancel
    st = load(root)
    st.update({"a": "f", "av": vstr(rec.get("v", 0)), "p": "", "pv": "", "n": 0, "rb": None})
    save(root, st)
    os.remove(_join(root, "app/fw.json"))
    if log:
        log("ota: firmware image %s confirmed" % st["av"])


def run(root="", log=print, cause=None, until_ms=None):
    """main.py: `import otaboot; otaboot.run()`. Returns the App (simulator)."""
    if cause is None:
        cause = _cause()
    img = _image_check(root, log)
    if img is not None:
        # A new firmware image runs the application frozen into it (slot "f");
        # the slots' state is left alone until the image is confirmed.
        slot, on_trial = "f", False
    else:
        slot, on_trial = select(root, cause, log)
    if on_trial or img is not None:
        _wdt()      # armed before the new code is imported: a hang resets
    enter(root, slot)
    # The modules just dropped still hold heap until a collection; the app's
    # code is loaded next and needs large contiguous blocks for bytecode.
    gc.collect()
    try:
        appmod = __import__("ykt.app", None, None, ("App",))
        app = appmod.App(root, log)
        app.boot()
    except Exception as e:
        if on_trial:
            _fail(root, "boot: " + _err(e), log)
            return None
        if img is not None:
            _reset()    # the image is still pending: the bootloader goes back
            return None
        raise
    if on_trial or img is not None:
        why = trial(app, root, log)
        if why is not None:
            if on_trial:
                _fail(root, why, log)
            else:
                if log:
                    log("ota: firmware image failed its trial (%s)" % why)
                _reset()
            return None
        if on_trial:
            confirm(root, log)
        if img is not None:
            _image_valid(root, img, log)
    app.ota_status = status(root)
    try:
        app.run(until_ms)
    except Exception as e:
        if log:
            log("ota: loop crashed: " + _err(e))
        _reset()
    return app
