"""ykt_tools.powercut.journal"""
