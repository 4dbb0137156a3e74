"""The two tasks mnistnet trains, and what each means for the network's shape.

One vocabulary everywhere: a *task* (``binary``, ``multiclass``) is what the
config, the CLI, the model file and the network's output head all call it.
"""

TASKS = ("binary", "multiclass")
N_INPUTS = 784  # 28 x 28 pixels
N_CLASSES = {"binary": 2, "multiclass": 10}
N_OUTPUTS = {"binary": 1, "multiclass": 10}  # a binary net has one sigmoid output


def task_title(task, class_names):
    """A short title for pictures and tables: ``"binary 5 vs 8"`` or ``"ten classes"``.

    ``class_names`` are the model's labels in label order (digits as strings,
    or Fashion-MNIST's names).
    """
    if task == "binary":
        return f"binary {class_names[0]} vs {class_names[1]}"
    return "ten classes" if len(class_names) == 10 else f"{len(class_names)} classes"


def display_names(meta):
    """Names of the model's labels in label order, from ``class_names`` or the classes."""
    classes = meta["classes"]
    names = meta.get("class_names")
    if isinstance(names, list) and all(isinstance(s, str) for s in names):
        if len(names) == len(classes):
            return list(names)
        if len(names) == 10:  # the dataset's ten names, indexed by class
            return [names[c] for c in classes]
    return [str(c) for c in classes]
