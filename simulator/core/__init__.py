"""The contracts every other layer builds on: the link and channel protocols, metrics and their intervals, parameter
models, registries, errors, SNR conventions, seeding and numerics. Nothing here imports another semsim layer."""
