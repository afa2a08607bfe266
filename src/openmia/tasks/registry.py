"""The task registry: every task family is a :class:`~openmia.tasks.base.Task` subclass registered
here by name (``@register_task("segmentation")``). The built-in families are imported on the
first lookup, so importing this module (the config does) imports nothing heavy."""

from __future__ import annotations

from openmia.registry import Registry

# modules that register the built-in task families (one line per family)
TASK_MODULES = ("openmia.tasks.classification", "openmia.tasks.segmentation", "openmia.tasks.detection",
                "openmia.tasks.counting", "openmia.tasks.landmarks",
                "openmia.tasks.reconstruction", "openmia.tasks.inpainting", "openmia.tasks.denoising",
                "openmia.tasks.pretrain")

TASKS: Registry = Registry("task", modules=TASK_MODULES)


def register_task(name: str, **meta):
    """Class decorator: register a Task subclass under ``name`` (its ``name`` attribute is set)."""
    def deco(cls):
        cls.name = name
        return TASKS.register(name, **meta)(cls)

    return deco


def get_task(name: str):
    """The Task class registered as ``name`` (UnknownNameError with close matches otherwise)."""
    return TASKS.get(name).factory


def task_names() -> list[str]:
    """Every registered task family, sorted."""
    return TASKS.names()
