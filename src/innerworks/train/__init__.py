"""Training: recipes (YAML + pydantic), the shared loop, checkpoints and run directories.

>>> from innerworks.train import load_recipe
>>> load_recipe("quick").task
'classification'
"""

from innerworks.train.config import Recipe, TrainConfig, load_recipe, parse_recipe
from innerworks.train.loop import TrainResult, train
from innerworks.train.run import Run, load_run
from innerworks.train.tasks import Task, available_tasks, get_task, register_task

__all__ = [
    "Recipe", "TrainConfig", "load_recipe", "parse_recipe", "TrainResult", "train", "Run", "load_run",
    "Task", "available_tasks", "get_task", "register_task",
]
