"""One module per service of the local stack, each a :class:`Service`."""
