"""ykt_tools.device"""
