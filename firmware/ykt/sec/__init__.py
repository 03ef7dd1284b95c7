# ykt.sec
