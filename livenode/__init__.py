"""
The live node: builds the TradingNode from validated settings, runs it under a supervisor
(connection check, signals, the control interface, state), for IB and the offline replay.
"""
