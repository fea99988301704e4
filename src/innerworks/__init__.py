"""innerworks: open up trained neural networks.

Three lines of research share one core:

- ``innerworks.dynamics``: fixed points, linearisation and attractor geometry of recurrent text classifiers.
- ``innerworks.attention``: temporal / input-driven decomposition of encoder-decoder attention.
- ``innerworks.wide``: correlation functions of derivative tensors in wide networks.

>>> import innerworks
>>> isinstance(innerworks.__version__, str)
True
"""

__version__ = "0.1.0"

from innerworks.errors import InnerworksError  # noqa: E402

__all__ = ["InnerworksError", "__version__"]
