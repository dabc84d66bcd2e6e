"""
Offline replay: a catalog streamed into a live TradingNode, with simulated execution.

`ReplayDataClient` is a Nautilus live market-data client that reads a Parquet catalog's bars
(and quotes where asked) and hands them to the node at a chosen speed; `ReplayExecutionClient`
is Nautilus's sandbox execution client with the backtest's fill and fee models, trading the
catalog's venue (SIM). Together they give a full paper session with no broker.
"""
