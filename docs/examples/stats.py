"""Small statistics helpers (a demo file for `lsp-copilot complete`)."""


def mean(values):
    """Return the arithmetic mean of values."""
    return sum(values) / len(values)


def variance(values):
    """Return the population variance of values."""
    m = mean(values)
    return sum((x - m) ** 2 for x in values) / len(values)


def median(values):
    """Return the median of values."""
    ordered = sorted(values)
    n = len(
