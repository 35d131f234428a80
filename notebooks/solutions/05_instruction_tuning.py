"""Solutions: notebook 05, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_mask(prompt_ids, response_ids):
        ids = list(prompt_ids) + list(response_ids)
        # position t predicts ids[t+1]: the last prompt position predicts the first response token,
        # and the last position has nothing left to predict.
        labels = [-100] * (len(prompt_ids) - 1) + list(response_ids) + [-100]
        return ids, labels

    return my_mask


def exercise_2():
    r, layers = 8, 30
    shapes = [(576, 576), (576, 192), (576, 192), (576, 576)]  # q, k, v, o as (in, out)
    return layers * sum(r * (d_in + d_out) for d_in, d_out in shapes)  # A is r x in, B is out x r
