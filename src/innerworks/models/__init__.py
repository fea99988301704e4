"""Models: recurrent cells, the text classifier and the activation-cache vocabulary (``innerworks.models.hooks``).

Sequence-to-sequence models live in ``innerworks.models.seq2seq``.
"""

from innerworks.models.cells import CELL_TYPES, CellType, RecurrentCell, make_cell
from innerworks.models.classifier import RNNClassifier

__all__ = ["CELL_TYPES", "CellType", "RecurrentCell", "RNNClassifier", "make_cell"]
