"""The command-line client of the gateway: `price-category predict | retrain | runs | model`."""
