"""CPython side of the pinned vectors: the host signer (ykt_tools.build.signing,
`cryptography`) reproduces the exact signed-file bytes that the firmware
verifies in tests/fw/t_signed.py on both runtimes, and the batch decoder
survives arbitrary input (fuzz)."""
import binascii
import os

import pytest
from hypothesis import given, settings, strategies as st

import conftest  # noqa: F401  (paths)
from ykt_tools.build import signing
from ykt import taprec
from ykt.sec import signed
from ykt.sec import sigverify
from ykt.net import wire
from yktsrv import wiresrv
import t_signed_vec as V
import t_wire as TW

# TEST-ONLY keys: published here on purpose so the vectors can be rebuilt.
# Never provision them on a device.
PEM_A = """-----BEGIN PRIVATE KEY-----
MIIG/QIBADANBgkqhkiG9w0BAQEFAASCBucwggbjAgEAAoIBgQCh8VUjbkGDHv5t
z8ui8q6JV5nAvMHTikHIfE9xPZgVlJYQk3Big9MI6N3eQLNwSPJaMT3yHo937Q/K
g0cgmOtbaIqXdEgIaoBdPx2JmbsnodCbOpTDhr8xYM3oGtT2bVXvG0cOuNA1PJLt
Lp2ctr8qco6ngVwjIyeJdm5QyKb/6Q62WSpSvKJoIeGz+kb8rD4FInw4BAwzFAXs
pr55ppQ+ETnHLdBX7BTwcp0wOtxG6Q0smNi8HWV2N2Ba8fNd4lY7YiQcrd6biElZ
UUw/bICgPEHZ5BmqT1EkxJeBMAYG/kkKWvKLdgarCjDxrzYSu2MpaEzYwmjwmyyk
uCqF49cSZrb2UziV06qSI/7q+rMn82nh2EZPJ7H+X2TIFkWV4cqtk562KvCb0PZV
oyeuekvF5+D3EUeJ8zjtGdf4GMuxBM+FA6J/HVh19cQgOET4wSn0pFnd7i+7YdDn
WofTYRzqih13JB+cMalXaOuPCQGz0Bn2edlhTEg7WA81TQvlSPcCAwEAAQKCAYAi
Oisn82g2Sek1lWsxVACOt6yf/2UqDDkuIhP6V63atc5nz3m74KfMZMdr75ndXBWY
+Xphv5LMIpcpUsjIO3nXFofgTevhl3zs+GeKSysyy7EW9fE2SDcFvTOX4H/tW5uD
j2zb0DT1Y4mcRrN6SWerFY5QGfe613XGSHk1astdIEmDQeI/nW3n+21ESFwTkGYF
WM4PWs+nRg6gf3eXp50CZ0qibezwgE3GqjrN1Er1U9F8gQuh6sakjzy2zBeHWsxP
wHhUhGI09I9W6rGeGIQwK/hqUhlxZoPHWex6stEh1hvK6fMch1LLyEKd6kNYjyJe
3HOjg8nD6bOxkfqRwHPWWEH2GTs7ZAt24562NzMYrGiaBtcIZidr6echVByNjNy1
MfAvIRVkUdsQGwj3+V/v14VaXa8HCpfz9WkVd8GF0poCZCXyrU+jqtoJI3DNc29z
qdX1sBvsEaHWCInxsYQvRsb+rG7lAYe3aPX3deVwijaG6cF1nG6RLqXP+xs1+A0C
gcEA2NQD1UF9Cy/RDQYkC2D9GgmH/ck2E57pfE0AgWlooT45DogAFEaMTvnfPvR7
2e41eqm9RGOk55+lVHE+DnWgd+yTzba2VPR+EqswpMmyj+ydNkfV36fAPiaJl1Yc
QMb78EKQaTecVR0r8nBumiU41DDZisIbmFbHhEFEZVoSMUN5/fgixotVUjJZwAXz
6Avr1CyOD350Px+XbaAG0u7x4n8aoXCOC8K2qgVRL7H9ORi0HbUuLiOZpa3H0bnz
0dkLAoHBAL8y8eF7ud9ld2SRmYAV7qZ0gpzJSYZVYQQwN2jD5FPdXOUkdd8JH1EJ
0L9rWkuuUw/g5mOUZ2Q+/CjQuJfdl4jj1C31URb1k42sbsN2Xij6llNl6V3Ri2qI
4aLjtD0BjoYLU5GmxwM/ooqi6kJa0s76skLhuYTj1DGNFkKL4aiPhQaYBMY7mq5l
J6NqRXE3HaJTHebi9G8BmtWVzLCA/iJClKgeFkFLwSzO6Qz6f+uQK0j03L4dsPd3
dEKh4pj7RQKBwG9WTrGOcxrvbrT1VkTRhKV+B2p1i2L/0nyVPZE2Axfoz3t6si+3
GgzjmZLGD2KUQrm9twYK9H5LJ6X4kBj0pXVu8WZMT8vHz4TeipfTSfFFWmSo9lVl
2f0P5M7k1JUel/eC9oxQleHOnOZcfS6BtnCetNXfXjQXO1PZ/7jbS0QoldenNpQk
r6cJW7SSWe/pTysfxcKG+EIBgswzw81EDMh048PJ++ZmEU20dT+8cX6EBNjMU+41
MYw1c8lpZp12iQKBwGZswC7uvO/zxzXU2cpH9YSuPZoIKp8P9dzsh4JUDmju2OjX
010b4e7jtzQUKlcIl+6VqFYIFisZorOqvHh+eMMYaX4FQN9vxw/KI7wKGP8S3pzm
p1FfA7Sah2VfXhqgTt14C9im403WNRjXlW7egLfojL5Pdba+5dl1n0se7FAEMlsJ
7OTU4VQzVDyynWi9Ad8Hb6lUQ2WEEpIAoZqcP4fS6xf0pi9siZubbDVLrGNg5A89
PVOLTFYFY/6eAmm5kQKBwQCCwFq2ggVuk6ILMWup14c2ZRM9d5B7H0ne7O/TlRsH
TyXfWCTa38ICfd4F7f28MrSvbiYoMgryAit7BwAdpToHGT4BBPnpVW6K5bbHT3jq
3y3R18i87pepgUQLW9rOy7AnlMsP1kdvNA4QzRq2+xMPM0n+SNBEqZbGEPc+GT4e
DaOQ6MM01/OKDqDowWUyCKiCcKiR+u9RpZFy9/vJAq1sO0PpfViSxtQSvHISYSDK
Jx3d6f7RKqJ5VLMhuF2aTZQ=
-----END PRIVATE KEY-----"""
PEM_B = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDmZjLiKoDKluhU
UjfMwwe8tSB4oVgzu/q/mOQ1QnUiXmyKYLFN7O/MeTKHuYV0+Vv785amQLd9KsQF
wPcmpuuY5S2Oj5EYld/BhergJRCmqztGCSNPSN2L/YM3Oq+BDELIKA5DkL5ed+VS
3IQcVUrq49A1jTMnuDie21eAwiiFbvEq8jsL2bdoU6ObOg9Gkk2pSPuJmb6376Pu
7Dd3HoLJkUkgzl8ePG8mdZRbZgbHS9mwgyIx3xXiapwawXflxwh1lsb+ygOicXh0
Du2a6+VHC6RsEnIQAyGjO80yd5jUsK7oPvYTYbxKaXewrgVPOjLPDrTp9oF5/Sew
BAXvHdwLAgMBAAECggEAYmJ60QRIWfpl/HfddxVDTQxlcM2pHfJkKYPu02VtIn+C
xvZyUC3g2oZYkwegWyqOYoEKsDTLheoIqdJUV8+IpJIcyZc55O8/DOMUQKHjQeC1
33rQdq9NV9WqPh/TyP4E2HbuXGDHQgzdwuwCiBzN8I7Wnr+MfCYZG5DbhVKjvhIq
AnxwrAtYvgekRwRAbyYUjYvt1fUxFg3OfIkn6N98awZ4C9eIgEErYdEGBhTMTRfJ
6vH3Npwbo9jTMkXjWozZO7MqmEtcBOvxSXmX/8bkti+u5oWRsXHoZtYRKLbA/1PF
j3zw1pF0Ej6m4Cgz+bymrpYuvN5QuJEGZihVc4nTqQKBgQD0181hESN7BsLaLfTV
fGhHMQK8BrhEPmXz8Lpp/az1Deq61uAOq9ZcQk9DFDJXPHzq/rShgzmpv2qyGV9D
PnOw0s6pFX2w+fEZUcsxOuJwl6nOpwlupBg2TYCeUqeMIVWCXqUxAMKGSbcUv/1/
rR7x72ZJ8kwUJUkg3FYiRes7uQKBgQDw5edh/ZDUJ5D54oBKzh2kZInkHAnn4wrn
8OpenB+AayhKeY6glOy9JXgMUpZ0D5y+eIs0+d0pNpzH/TrWfSTm57EDC5HsjzC+
lc3rbU53IZ9z0xKNZi+OGbIghOVCzaYAmDtzV+46Ae8s/B+RaUtOdKaLUBhUfLG7
HqVvmPCf4wKBgQCTRl++nG2IKhf43x3fcHbVI9DuQuiB/DqdUlb/PFzWBqoD+w5J
JOnLEwPUaIijWroVLGKAqIt95KsMOCDKNP2oBhXTNR8m3iE9Rqr/kNj2OvQkXutY
hxIdT98m3Lb1nnNt+PpKkJdx6VNcAuQ78Wmkw4j2v+0tTQRA5OhWs1H82QKBgDhB
6JRYzB7PkqrYu488rW170TwFVEbkHeLmv0US/sRVwhYKZ0WXIeZWPr/Z9arrDnbo
3dGkXILIbzrBJ6F5nkmSaCNG63AsTHzlrS5C26U0o/E/pMCC0a5Ez/WKM6QzNIZF
BvU73rWLSBjgVFr4FQ8gbNhx/wyUBkmlsYrrU55zAoGBAN8AvnuUgtI+QeL5xKcS
g0b2OiXL/plaPzJpYrAysBh88y6yjIyZd1wTC9NMatp5CZ+1ne2fHsFbJbthMsOW
ek6FuwY1bPR8nfkhDQ9e9+7S+cDG/MiArMqSuO0N829se0kcUV17NpCNwAHxrz9J
SOBJjdaoonXFffe7WlgEO0EE
-----END PRIVATE KEY-----"""
PEM_C = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCJxy0bgRofpYps
mXt6n4i60MsKmjLooI7chf0DUc4HzQJKgyizV1xmUi4suwA27lCtsb2SCxlqw/i0
Q3OV/sAZuKlGSypiesnkgLoRZNB4LfvjzokX6yh1qr6mG60zexmcvhYURrAiEywa
4D0ECog1jpmMCvulNUg+ml9UKRjUTYulMxwBS1YvGSmtJaMeZwK9zZsdn/Y6nMB6
K3ekOXO/y69VAyj8DORBYp/coMDamgnNn+ZTVDAU88x9NlgjXttnPPQMptZ+YElj
LDBIlV4hli0Rc6WmvAd8ZDlvmUyOj6mlAZqEWjgdiOYHiuo3kMa7SulttjWZI6Ls
DR2hICvtAgMBAAECggEAFuo9ollyktjhkPZmBxsJjqizXGwRE4fAuwS99BNjBQEf
5Gy0FD/vakU40M+5VWmFmZ36PZQDAjLd5n1heA0KvjxsSvitb/ukIJEYYVQ3KAXd
4yGyw3ulGwzu8Imh4PIUbHFhErY/DSvLJh0tiMKHrQCuoRAiknOuNFtQh5reOlD8
8w+EoaZ6Wgn+XFy3H3nYb29vePiGvOrWpgCrAuf7t0tVgxqA1sFcZc66QOWvWOG2
TSuALvbLGUkyD8uYwJYKw0WA7Dswh6MyQ82U7kjGRp16oY00sHtnklo3wCZEeVIj
DSUKmVvHGqCntTSWDQd0JxsK3OpJtkRcbLr1NmV/MQKBgQC90v3zU6ehSfMR7nBK
pN+uXUsAJn+xMd8lDzntSlmIGVBxxb0t2jyzgjF+c5prO2J5NBMg2EYzU1cO60/p
sf5jPx1TXyAgxbTkr3t5WierpUX6pk1s6HufqPcHfCqaW3zgDc/So2XId0T0P848
curSfa1j+r3C/gyQdYhIHs180wKBgQC5z0jM9edw3egsc5L5TdJMvMRkd7yZ1SC6
roGIw5YctOCWj+483S6H8oGj0I20Ef4vBGq7Rthj5+9VXJgpk7HvV486zP7A7akw
HcH7s8RNIiHCRWMjqOyC70lCPeIjyeM+GWZlXji5JuG3lahPaNQlsIdl4nTE43kW
Yg2qi188PwKBgHaRnF6pGkP81P+WWD3HzpAzZe2qHoioBiI36I73qgUBCuaGBSzm
7JOT9yZtPz9L0K60gF47uV3F6NNA2KG4tJV5ju/Ms1zFIcDWe+HJFo54pcVyq1oj
vVR1Thg2zsWr78xj1DRWK/WTylZmpIPNpC/moK+ap31tApwZTg7+boxRAoGATpja
CKj0D5Auh68TupUqof8va/giNUgsIgtzC7EALIBuiAG2GtTMvADeybaMWmFKDgVm
SHW9TvVrDcavLtck60M0eQEBugZODOZpidkO7jnD4fOL7iekc/ZYHMckg1MA5uHD
qJlkkR1bWVba7UxAgPjdLUHPdwFp1QgBE+UEke0CgYEAkrVz0WXyWOc7BWEk2YoG
6ApSSnu5sAge4jNzfpSw/XjKeS2qh9FS34N+ccxrRxvr9ldQqkm2TIR1FrihvVK+
ROcDtEdq69EURVTBi0U8GvPH90zfFyTko65W9iuJRqmEyg5NdzI2nVsLsjsr/Cvm
lSy9CpqpKpJwRyL5VttM6rs=
-----END PRIVATE KEY-----"""
EXAMPLES = int(os.environ.get("YKT_FUZZ_EXAMPLES", "300"))


def _k(pem):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem.encode(), password=None)


def _b(s):
    return binascii.unhexlify(s)


def test_key_ids_and_keyring_payload():
    a, b, c = _k(PEM_A), _k(PEM_B), _k(PEM_C)
    assert (signing.keyid_hex(a), signing.keyid_hex(b), signing.keyid_hex(c)) == (V.KID_A, V.KID_B, V.KID_C)
    assert signing.keys_payload([a, b]) == _b(V.KEYS_AB)


def test_host_signer_reproduces_vectors():
    a, b, c = _k(PEM_A), _k(PEM_B), _k(PEM_C)
    assert signing.sign_file(a, "fares", 5, b"fare-table-v5:bus301=200", created=1795000000) == _b(V.FARES_V5_A)
    assert signing.sign_file(b, "catalog", 2, b"catalog-v2", created=1795000100) == _b(V.CATALOG_V2_B)
    assert signing.sign_file(a, "denylist-delta", 8, b"+0011223344556677", base=7,
                             created=1795000200) == _b(V.DELTA_V8_ON_7_A)
    assert signing.sign_file(c, "fares", 6, b"fare-table-v6:bus301=1", created=1795000300) == _b(V.FARES_V6_C)
    assert signing.sign_file(b, "entitlements", 3, b"ent", created=1795000400, scope=42) == _b(V.ENT_V3_DEV42_B)


def test_cryptography_verifies_what_firmware_accepts():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    blob = _b(V.FARES_V5_A)
    _k(PEM_A).public_key().verify(blob[-384:], blob[:-384], padding.PKCS1v15(), hashes.SHA256())


def test_fresh_key_roundtrip_4096(tmp_path):
    k = signing.generate_key(4096)
    p = tmp_path / "k.pem"
    signing.save_private(k, str(p), b"pw")
    assert oct(os.stat(p).st_mode & 0o777) == "0o600"
    k2 = signing.load_private(str(p), b"pw")
    ring = signing.device_keyring([k2])
    h, payload = signed.verify_blob(signing.sign_file(k, "config", 1, b"{}"), ring, (signed.K_CONFIG,), 0, 16)
    assert h.version == 1 and payload == b"{}"


def test_signer_refuses_bad_arguments():
    a = _k(PEM_B)
    with pytest.raises(ValueError):
        signing.sign_file(a, "fares", 0, b"")
    with pytest.raises(ValueError):
        signing.sign_file(a, "fares", 2, b"", base=1)
    with pytest.raises(ValueError):
        signing.generate_key(1024)


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 200))
def test_fuzz_batch_decoder_only_raises_wireerror(junk, cut):
    base = _b(TW.BATCH_HEX)
    for body in (junk, base[:cut] + junk, b"YKTB\x01" + junk):
        try:
            wiresrv.decode_batch(body, lambda d: TW.KEY)
        except wire.WireError:
            pass


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 1000), st.integers(-10**6, 10**6), st.binary(min_size=8, max_size=8),
                          st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                          st.integers(0, 0xFFFFFFFF)), min_size=1, max_size=wire.MAX_COUNT))
def test_fuzz_roundtrip_exact(rows):
    taps, seq, tm = [], 1, 1795000000
    for gap, dt, tok, code, fare, stop, dl in rows:
        seq += gap
        tm = min(max(tm + dt, 0), 0xFFFFFFFF)
        t = taprec.Tap()
        t.seq, t.time, t.reason, t.flags, t.fare, t.stop, t.dl_ver = seq, tm, code, code ^ 0x5A, fare, stop, dl
        t.token[:] = tok
        taps.append(t)
    body = wire.encode_batch(9, b"k" * 32, taps)
    assert len(body) <= wire.MAX_BODY
    dev, out = wiresrv.decode_batch(body, lambda d: b"k" * 32)
    assert [taprec.pack(t) for t in out] == [taprec.pack(t) for t in taps]


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_signed_reader_only_raises_signederror(junk):
    ring = sigverify.parse_keys(_b(V.KEYS_AB))
    for blob in (junk, _b(V.FARES_V5_A)[:36] + junk):
        r = signed.Reader(ring, (signed.K_FARES,), 0, 4096)
        try:
            r.feed(blob)
            r.finish()
            raise AssertionError("junk accepted")
        except signed.SignedError:
            pass
