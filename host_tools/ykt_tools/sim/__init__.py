"""ykt_tools.sim"""
