"""The data catalogue: a static site of the lake's tables, public and for researchers."""
