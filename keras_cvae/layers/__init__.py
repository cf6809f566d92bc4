"""Building blocks the model families share (see `blocks`); each family keeps its own
networks in its task folder."""
