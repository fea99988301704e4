"""innerworks.attention."""
