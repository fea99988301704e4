"""innerworks.wide."""
