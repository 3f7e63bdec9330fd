"""A workspace's metric definitions as published versions: publish, list, show, and the
catalog the consumer counts with."""
