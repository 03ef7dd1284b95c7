# ykt.ui
