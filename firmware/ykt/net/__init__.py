# ykt.net
