"""Backends: how a model turns a request into text (see :mod:`.base` for the protocol)."""
