"""Small helpers every layer may use: the clock, durable writes and slot files, the node's
key-value state, did-you-mean hints."""
