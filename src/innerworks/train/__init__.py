"""innerworks.train."""
