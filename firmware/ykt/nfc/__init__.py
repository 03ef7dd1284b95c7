# ykt.nfc
