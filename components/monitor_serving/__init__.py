"""monitor_serving: skew, drift, predictions, performance and domain of served traffic."""
