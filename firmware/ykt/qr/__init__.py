# ykt.qr
