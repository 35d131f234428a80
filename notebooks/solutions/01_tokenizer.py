"""Solutions: notebook 01, self-checking exercises (helpers.course.exercises)."""


def exercise_1():
    def my_count_pairs(ids):
        counts = {}
        for pair in zip(ids, ids[1:]):  # every position but the last starts a pair; runs overlap
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    return my_count_pairs


def exercise_2():
    def my_merge(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
                out.append(new_id)
                i += 2  # skip both ids of the merged pair: no overlap
            else:
                out.append(ids[i])
                i += 1
        return out

    return my_merge


def exercise_3():
    text = "Perché il reso costa così tanto?"
    return len(text), len(text.encode("utf-8"))
