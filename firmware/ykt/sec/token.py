# The keyed pseudonymous card token: decisions, deny lists, entitlements and
# tap records carry this, never the card identity. The key is per region or
# operator and provisioned with the device; without it a token reveals nothing.
from ykt.sec.hmac256 import hmac_sha256
from ykt.compat import const

TOKEN_LEN = const(8)  # 64 bits: collision-free in practice for 10^8 cards
_DOMAIN_CARD = b"ykt-card-v1\x00"
_DOMAIN_CARDNO = b"ykt-cardno-v1\x00"


def card_token(key, card_id):
    """Token of the card identification code (卡识别码): one per physical card."""
    return hmac_sha256(key, _DOMAIN_CARD + bytes(card_id))[:TOKEN_LEN]


def cardno_token(key, card_no):
    """Token of the card number (社会保障卡号): changes when a card is reissued."""
    return hmac_sha256(key, _DOMAIN_CARDNO + bytes(card_no))[:TOKEN_LEN]


def token_hex(tok):
    return "".join("%02x" % b for b in tok)
