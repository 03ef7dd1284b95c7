# ykt.rules
