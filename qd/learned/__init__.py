"""Learned behaviour spaces: autoencoders (flax), their training on padded datasets (optax), and the
encoding / refresh of stored descriptors that TAXONS, AURORA, STAX and their variants share.

Modules:

- :mod:`qd.learned.layers`: exact fast formulations of the papers' strided (transposed) convolutions;
- :mod:`qd.learned.autoencoders`: the TAXONS and STAX convolutional autoencoders, an MLP autoencoder;
- :mod:`qd.learned.training`: padded fixed-capacity datasets and one compiled training program.
"""
