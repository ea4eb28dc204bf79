"""Events: the transactional outbox, its relay to Dapr (or in-process), and dispatch."""


def emit(*args, **kwargs):
    """Write an event to the outbox in the current transaction (see ``events.outbox.emit``)."""
    from .outbox import emit as _emit

    return _emit(*args, **kwargs)
