"""Sources: one module per way of talking to a provider; each yields typed events."""
