"""Data sources for semantic links: the registry, the embedded digits and CIFAR-10/100."""
