"""Pretrained networks that ship inside registry packages, each loaded lazily and once."""
