"""Object stores: the ObjectStore interface, its implementations and wrappers."""
