"""What a room learns and notices over time: optimum start and stop, fault detection."""
