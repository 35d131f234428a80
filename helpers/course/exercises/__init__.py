"""Exercises that check themselves: `check_exercise("01", 2, answer)` says what is right, or gives a
hint that points at the mistake without giving the solution away.

Each exercise is registered with its notebook, number, title and task (the notebooks show the task),
and a check that compares the learner's answer with the course's own reference (`helpers`), on
inputs chosen to expose the usual mistakes: a known mistake gets its own hint, anything else a
general one. Answers are values or functions; a function is called on several inputs, and if it
raises, the feedback says on which input.

One module per notebook (`nb01_tokenizer` ... `nb07_local_deployment`) registers that notebook's
exercises; `common` holds the registry and the tools the checks share. Importing this package
registers them all.

Solutions live in notebooks/solutions/NN_name.py (one `exercise_N()` per exercise, returning the
answer); tests/test_exercises.py runs each through its check and proves each check rejects a wrong one.
Left out: open-ended exercises (the notebooks' own "Exercises" lists) are not graded here.
"""

# Importing a notebook's module registers its exercises in EXERCISES.
from helpers.course.exercises import (  # noqa: F401, I001 - imported for their registrations
    nb01_tokenizer,
    nb02_tiny_gpt,
    nb03_pretraining,
    nb04_pretrained_model,
    nb05_instruction_tuning,
    nb06_train_vs_instruct,
    nb07_local_deployment,
)
from helpers.course.exercises.common import EXERCISES, Exercise, Feedback, check_exercise, exercises_for

__all__ = ["EXERCISES", "Exercise", "Feedback", "check_exercise", "exercises_for"]
