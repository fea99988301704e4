"""One seed drives every random source.

>>> g = seed_everything(3)
>>> import torch; a = torch.rand(2); _ = seed_everything(3); bool((a == torch.rand(2)).all())
True
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a fresh ``torch.Generator`` seeded the same way.

    >>> seed_everything(0).initial_seed()
    0
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
