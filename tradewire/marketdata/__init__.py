"""Pure market-data builders: engine events in; depth diffs, trades, candles and tickers out."""
