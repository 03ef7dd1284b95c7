"""ykt_tools.cli.main"""
