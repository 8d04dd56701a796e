"""The node as a program: the command line, assembling and supervising the agent, reconfiguring
it while it runs, its service glue (systemd, lock, logs)."""
