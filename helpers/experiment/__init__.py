"""Train vs instruct, head to head (notebook 06): the task, the routes, the ladders over labelled
examples, label noise, FAQ adaptability, and the report (the article's table with verdicts from intervals).
Stands on the routes (`scratch`, `instruct`), `deploy`, `measure` and `core`; never imports `course`.
"""
