"""The running node's parts (NodeParts) and the narrow interfaces (ports) that command handlers,
the config manager, the reconfigurer and the room service get instead of the Agent."""
