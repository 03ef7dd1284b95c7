# ykt.ota
