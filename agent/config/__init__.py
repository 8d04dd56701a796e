"""A node's TOML config: its schema and loading, each section's part, where a running node's
config comes from, and its errors."""
