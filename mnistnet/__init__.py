"""mnistnet: a two-layer neural network on MNIST, from scratch in NumPy.

Importing this package touches no disk and no network.
"""

__version__ = "0.1.0"
