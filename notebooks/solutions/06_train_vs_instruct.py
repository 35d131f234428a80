"""Solutions: notebook 06, self-checking exercises (helpers.exercises)."""


def exercise_1():
    def needed(ns, accuracies, target):
        points = sorted(zip(ns, accuracies))
        for i, (n, _) in enumerate(points):
            if all(acc >= target for _, acc in points[i:]):
                return n
        return None

    return needed


def exercise_2():
    import numpy as np

    def flip(labels, fraction, seed):
        labels = np.asarray(labels)
        k = round(fraction * labels.size)
        order = np.random.default_rng(seed).permutation(labels.size)  # one order per seed: nested prefixes
        out = labels.copy()
        out[order[:k]] = 1 - out[order[:k]]
        return out

    return flip
