"""ykt_tools.bench"""
