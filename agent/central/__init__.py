"""What central systems see of the node: retained state and Home Assistant discovery."""
