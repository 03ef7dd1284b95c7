"""`ykt provision`: give a device its identity and keys, register it with the
back office.

Order (so nothing is half-done without saying so): check the device (firmware
present, not provisioned unless --force) -> register with the back office
(it issues the per-device key; no default credentials exist) -> write
data/profile.json, data/keys.bin, config.json and the NVS secrets (dev_key,
tok_key, wifi_key) -> read back and check. Secrets travel only inside the exec
sent to the device; they are never printed, logged or put in an exception
message (devconn.secret_exec masks them)."""
import json
import os
import re
import urllib.error
import urllib.request

from ykt_tools.device.devconn import DeviceError, fw_path

fw_path()

DIRECTIONS = {"none": 0, "up": 1, "down": 2, "entry": 3, "exit": 4}
# board kind (boards/*.json "kind") -> back-office device kind
BO_KIND = {"bus_validator": "validator", "ferry_validator": "ferry", "turnstile": "gate", "gate": "gate"}
DEFAULT_CONFIG = {"sync_interval_s": 60, "heartbeat_s": 300, "batch_max": 100, "batch_age_s": 30}


class ProvisionError(Exception):
    pass


class AlreadyProvisioned(ProvisionError):
    pass


class InsecureStorage(ProvisionError):
    pass


def parse_direction(v):
    if isinstance(v, int) or str(v).isdigit():
        d = int(v)
        if 0 <= d <= 4:
            return d
    elif str(v).lower() in DIRECTIONS:
        return DIRECTIONS[str(v).lower()]
    raise ProvisionError("direction must be one of %s or 0..4, got %r" % (", ".join(DIRECTIONS), v))


def check_params(device_id, entry, stop, direction, backoffice):
    """Validate what the technician typed; returns normalized values."""
    try:
        device_id, entry, stop = int(device_id), int(entry), int(stop)
    except (TypeError, ValueError):
        raise ProvisionError("device id, entry and stop are integers")
    if not 0 < device_id <= 0x7FFFFFFF:
        raise ProvisionError("device id must be 1..2147483647, got %d" % device_id)
    if not 1 <= entry <= 65535:
        raise ProvisionError("entry (catalog entry id) must be 1..65535, got %d" % entry)
    if not 0 <= stop <= 65535:
        raise ProvisionError("stop must be 0..65535, got %d" % stop)
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[^\s]*)?", backoffice or ""):
        raise ProvisionError("back office URL must look like http://host:port or https://host, got %r" % backoffice)
    return device_id, entry, stop, parse_direction(direction), backoffice.rstrip("/")


_STATE = """import os,json
r={'nvs':[],'device_id':None,'fw':False,'board':None,'backlog':None}
try:
 import esp32
 n=esp32.NVS('ykt')
 b=bytearray(64)
 for k in ('dev_key','tok_key','wifi_key','jrnl_key'):
  try:
   n.get_blob(k,b)
   r['nvs'].append(k)
  except OSError:
   pass
except ImportError:
 r['nvs']=None
for p in ('ykt/app.mpy','ykt/app.py'):
 try:
  os.stat(p)
  r['fw']=True
 except OSError:
  pass
try:
 with open('config.json') as f:
  r['device_id']=json.load(f).get('device_id')
except (OSError,ValueError):
 pass
try:
 with open('board.json') as f:
  r['board']=json.load(f).get('kind')
except (OSError,ValueError):
 pass
r['flash_crypt_cnt']=None
try:
 import machine
 r['flash_crypt_cnt']=(machine.mem32[0x3FF5A000]>>20)&0x7F
except Exception:
 pass
r['nvs_keys']=None
try:
 import esp32
 r['nvs_keys']=len(esp32.Partition.find(esp32.Partition.TYPE_DATA,4))>0
except Exception:
 pass
print(json.dumps(r))
"""
# FLASH_CRYPT_CNT: ESP32 eFuse EFUSE_BLK0_RDATA0_REG (0x3FF5A000) bits 20..26,
# odd number of bits set = flash encryption on; nvs_keys: a data partition of
# subtype 4 (ESP-IDF's nvs_keys). A runtime that has neither reads as plain.


def device_state(dev):
    """{'nvs': [names of secrets present], 'device_id', 'fw', 'board',
    'flash_crypt_cnt', 'nvs_keys'}; no secret values."""
    return dev.eval_json(_STATE)


def is_provisioned(st):
    return bool(st.get("device_id")) or "dev_key" in (st.get("nvs") or [])


# --- back office ----------------------------------------------------------
def register_db(db, name, kind, entry, device_id, force=False):
    """Register through the back office's Python API (same host as its database)."""
    from ykt_tools.backoffice import api, ops

    try:
        return api.provision_device(db, name, kind=kind, entry=entry, device_id=device_id, actor="ykt-provision")
    except ops.OpError as e:
        if getattr(e, "status", 0) != 409 or not force:
            raise ProvisionError("back office refused: %s%s" % (e, " (use --force to re-provision it: "
                                                              "this issues a new key)" if getattr(e, "status", 0) == 409 else ""))
    eng = api.engine(db)
    r = ops.rekey_device(eng, device_id, actor="ykt-provision")
    d = provision_info_db(eng)
    d.update(r)
    return d


def provision_info_db(eng):
    from ykt_tools.build import signing
    from ykt_tools.backoffice import ops
    from ykt_tools.backoffice.db import setting

    with eng.connect() as c:
        tk = setting(c, "token_key")
    return {"token_key": tk.hex(), "keys_file": ops.trusted_keys_payload(eng),
            "keyring": signing.keys_payload(ops.signing_public_keys(eng))}


def read_credentials(path):
    """Operator credentials file: JSON {"name": ..., "password": ...} or one line name:password.
    Must not be readable by others (like ssh keys)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ProvisionError("credentials file %s: %s" % (path, e.strerror))
    if st.st_mode & 0o077:
        raise ProvisionError("credentials file %s is readable by others: chmod 600 %s" % (path, path))
    with open(path) as f:
        text = f.read().strip()
    try:
        d = json.loads(text)
        return d["name"], d["password"]
    except (ValueError, KeyError, TypeError):
        pass
    if ":" in text:
        n, p = text.split(":", 1)
        return n.strip(), p.strip()
    raise ProvisionError("credentials file %s: expected {\"name\",\"password\"} JSON or name:password" % path)


def _http(method, url, body=None, headers=None, timeout=15):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    h = {"Content-Type": "application/json"} if body is not None and not isinstance(body, bytes) else {}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        raise ProvisionError("cannot reach the back office at %s (%s): check the address and the network"
                             % (url.split("/admin")[0].split("/v1")[0], getattr(e, "reason", e)))


def _detail(raw):
    try:
        return json.loads(raw).get("detail", raw[:200])
    except ValueError:
        return raw[:200]


def register_http(admin_url, creds_file, name, kind, entry, device_id, force=False):
    """Register through the admin HTTP API with an operator session."""
    base = admin_url.rstrip("/")
    user, pw = read_credentials(creds_file)
    st, raw = _http("POST", base + "/admin/login", {"name": user, "password": pw})
    if st != 200:
        raise ProvisionError("operator login refused (%d): check the credentials file" % st)
    auth = {"Authorization": "Bearer " + json.loads(raw)["token"]}
    st, raw = _http("POST", base + "/admin/api/devices",
                    {"name": name, "kind": kind, "entry": entry, "device_id": device_id}, auth)
    if st == 409 and force:
        st, raw = _http("POST", base + "/admin/api/devices/%d/rekey" % device_id, b"", auth)
    if st == 403:
        raise ProvisionError("operator %s may not register devices (needs a writer role)" % user)
    if st != 200:
        raise ProvisionError("back office refused (%d): %s%s" % (st, _detail(raw),
                             " (use --force to re-provision: issues a new key)" if st == 409 else ""))
    d = json.loads(raw)
    d["keyring"] = fetch_keyring(base, device_id, bytes.fromhex(d["key"]))
    return d


def fetch_keyring(base, device_id, key):
    """The trusted keys payload, as the device itself would download it
    (authenticated with its new key); checked against its own signature."""
    from ykt.sec import signed
    from ykt.sec import sigverify
    from ykt.net import wire

    path = "/v1/sync/keys?have=0"
    st, raw = _http("GET", base + path, headers={"X-YKT-Auth": wire.sign_request(device_id, key, "GET", path)})
    if st != 200:
        return None
    h = signed.parse_header(raw)
    payload = raw[signed.HDR_SIZE:signed.HDR_SIZE + h.length]
    ring = sigverify.parse_keys(payload)
    signed.verify_blob(raw, ring, (signed.K_KEYS,), 0, 4096)
    return payload


# --- device ---------------------------------------------------------------
def _nvs_code(secrets):
    lines = ["import esp32", "n=esp32.NVS('ykt')"]
    for k in sorted(secrets):
        lines.append("n.set_blob(%r,%r)" % (k, bytes(secrets[k])))
    lines += ["n.commit()", "print('ok')"]
    return "\n".join(lines)


def write_device(dev, config, profile, keyring, secrets):
    """Write everything to the device; secrets go to NVS only."""
    dev.write("data/profile.json", json.dumps(profile, sort_keys=True).encode())
    if keyring:
        dev.write("data/keys.bin", bytes(keyring))
    dev.write("config.json", json.dumps(config, sort_keys=True).encode())
    out = dev.secret_exec(_nvs_code(secrets), list(secrets.values()))
    if "ok" not in out:
        raise ProvisionError("device did not confirm the NVS write")


def provision(dev, device_id, entry, stop, direction, backoffice, db=None, admin_url=None, creds=None,
              name=None, force=False, wifi_ssid=None, wifi_key=None, log=None, insecure_dev=False):
    """Provision one open device. Returns a summary without secrets. A
    device whose flash and NVS are not encrypted (ykt provision --secure)
    is refused unless insecure_dev: its secrets would sit in plain NVS."""
    log = log or (lambda m: None)
    device_id, entry, stop, direction, backoffice = check_params(device_id, entry, stop, direction, backoffice)
    st = device_state(dev)
    if st.get("nvs") is None:
        raise ProvisionError("this MicroPython has no esp32.NVS: is it an ESP32 build?")
    if not st.get("fw") or not st.get("board"):
        raise ProvisionError("no ykt firmware or board.json on the device: run `ykt deploy --port P --board B` first")
    from ykt_tools.device import secure
    storage = secure.storage_state(st)
    if storage != "encrypted" and not insecure_dev:
        raise InsecureStorage("flash encryption is off or NVS has no nvs_keys partition (FLASH_CRYPT_CNT %s, "
                              "nvs_keys %s): the device's keys would be readable off its flash chip. Run "
                              "`ykt provision --secure` first (docs/operations.md), or pass --insecure-dev "
                              "for a development board" % (st.get("flash_crypt_cnt"), st.get("nvs_keys")))
    if is_provisioned(st) and not force:
        raise AlreadyProvisioned("device is already provisioned (device id %s): refusing; "
                                 "use --force to re-provision (issues a new key)" % st.get("device_id"))
    kind = st["board"]
    name = name or "dev-%d" % device_id
    bo_kind = BO_KIND.get(kind, "validator")
    if db:
        info = register_db(db, name, bo_kind, entry, device_id, force)
    elif admin_url:
        if not creds:
            raise ProvisionError("--admin-url needs --operator-file (operator credentials)")
        info = register_http(admin_url, creds, name, bo_kind, entry, device_id, force)
    else:
        raise ProvisionError("give --db URL (back-office database) or --admin-url URL --operator-file FILE")
    log("registered %s as device %d in the back office" % (name, device_id))
    secrets = {"dev_key": bytes.fromhex(info["key"])}
    if info.get("token_key"):
        secrets["tok_key"] = bytes.fromhex(info["token_key"])
    if wifi_key:
        secrets["wifi_key"] = wifi_key.encode() if isinstance(wifi_key, str) else bytes(wifi_key)
    config = dict(DEFAULT_CONFIG, device_id=device_id, backoffice=backoffice)
    if wifi_ssid:
        config["wifi"] = {"ssid": wifi_ssid}
    profile = {"device": name[:32], "entry": entry, "stop": stop, "direction": direction, "board": kind}
    try:
        write_device(dev, config, profile, info.get("keyring"), secrets)
        after = device_state(dev)
    except DeviceError as e:
        raise ProvisionError("device %d is registered in the back office but writing the device failed (%s): "
                             "re-run with --force" % (device_id, e))
    missing = [k for k in secrets if k not in (after.get("nvs") or [])]
    if after.get("device_id") != device_id or missing:
        raise ProvisionError("read-back failed (config device id %s, secrets missing: %s): re-run with --force"
                             % (after.get("device_id"), ", ".join(missing) or "none"))
    return {"device_id": device_id, "name": name, "kind": bo_kind, "entry": entry, "stop": stop,
            "direction": direction, "backoffice": backoffice, "keys": bool(info.get("keyring")),
            "secrets": sorted(secrets), "secret_storage": "encrypted nvs" if storage == "encrypted" else
            "PLAIN nvs (--insecure-dev)"}
