"""Commands from the central side: the processor (answered once each) and what each command
does."""
