"""Python entry points for the simulator / scenario runner (`make run`).

    from ykt_tools.backoffice import api
    base_url, stop = api.start(db_url)            # server on a free loopback port
    dev = api.provision_device(db_url, "bus-1", kind="validator", entry=5)
    #   -> {"id", "name", "kind", "entry", "key" (hex, shown once), "token_key" (hex),
    #       "signing_kids", "keys_file" (the signed K_KEYS file, as /v1/sync/keys serves it),
    #       "keyring" (its payload: public key records to install at provisioning,
    #                  sigverify.parse_keys(keyring))}
    api.set_card_status(db_url, "lost", token="00112233aabbccdd")   # or card_id=/card_no=/citizen_id=
    api.import_registry(db_url, csv_text)          # card registry (docs/registry-import.md)
    api.publish(db_url, "fares", compiled_bytes)
    api.settle(db_url, 20261126); stop()
    api.use_clock(vclock.time)                    # optional: server time = simulated time

Every function takes a database URL or an Engine; engines are cached per URL."""
import threading

from ykt_tools.backoffice import ops, settle as _settle
from ykt_tools.backoffice.db import open_db

_engines = {}
_lock = threading.Lock()


def engine(db):
    if not isinstance(db, str):
        return db
    with _lock:
        e = _engines.get(db)
        if e is None:
            e = _engines[db] = open_db(db)
        return e


def use_clock(fn=None):
    """Server time source: e.g. api.use_clock(vclock.time) in the simulator."""
    from ykt_tools.backoffice.db import set_clock
    set_clock(fn)


def start(db_url, host="127.0.0.1", port=0):
    """-> (base_url, stop_fn): the back office serving in a thread."""
    from ykt_tools.backoffice.server import run_in_thread
    return run_in_thread(db_url, host, port)


def provision_device(db, name, kind="validator", entry=0, device_id=None, actor="sim"):
    eng = engine(db)
    d = ops.register_device(eng, name, kind, entry, device_id, actor=actor)
    from ykt_tools.backoffice import qrissue
    qrissue.ensure_qr_key(eng)                    # e-SSC QR codes: the device must trust the QR key
    d["keys_file"] = ops.trusted_keys_payload(eng)
    from ykt_tools.build import signing
    from ykt_tools.backoffice import keys
    with eng.connect() as c:
        d["keyring"] = signing.keys_payload(keys.trusted_entries(c))   # bootstrap: sigverify.parse_keys()
    return d


def set_card_status(db, status, token=None, card_id=None, card_no=None, citizen_id=None, replaced_by=None,
                    note="", actor="sim"):
    """One identifier of token/card_id/card_no/citizen_id, resolved through
    the card registry (registry.set_status)."""
    from ykt_tools.backoffice import registry
    given = [(k, v) for k, v in (("token", token), ("card_id", card_id), ("card_no", card_no),
                                 ("citizen_id", citizen_id)) if v]
    if len(given) != 1:
        raise ops.OpError("give exactly one of token, card_id, card_no, citizen_id")
    return registry.set_status(engine(db), status, given[0][0], given[0][1], replaced_by=replaced_by,
                               note=note, actor=actor)


def import_registry(db, text, name="cards.csv", actor="sim"):
    from ykt_tools.backoffice import registry
    return registry.import_file(engine(db), text, name=name, actor=actor)


def publish(db, kind, data, ident=0, actor="sim"):
    return ops.publish_file(engine(db), kind, data, ident=ident, actor=actor)


def settle(db, day, actor="sim"):
    return _settle.settle_day(engine(db), day, actor=actor)


def fleet(db):
    return ops.list_devices(engine(db))
