"""Models: recurrent cells and the text classifier (seq2seq models live in ``innerworks.models.seq2seq``)."""

from innerworks.models.cells import CELL_TYPES, RecurrentCell, make_cell
from innerworks.models.classifier import RNNClassifier

__all__ = ["CELL_TYPES", "RecurrentCell", "RNNClassifier", "make_cell"]
