"""Example sets: separable Gaussian blobs and probe sets, scikit-learn's digits."""
