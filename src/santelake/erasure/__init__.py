"""Right to object and erasure: the opposition register, ``santelake erase`` and its proof."""
