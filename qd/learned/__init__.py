"""Learned behaviour spaces: autoencoders (flax), their training on padded datasets (optax), and the
encoding / refresh of stored descriptors that TAXONS, AURORA, STAX and their variants share.

Modules:

- :mod:`qd.learned.layers`: exact fast formulations of the papers' strided (transposed) convolutions;
- :mod:`qd.learned.autoencoders`: the TAXONS and STAX convolutional autoencoders, an MLP autoencoder;
- :mod:`qd.learned.training`: :class:`Autoencoder` (model, render, Adam), padded fixed-capacity datasets and
  one compiled training program.

The algorithms that use them: :class:`qd.algorithms.Taxons` (TAXONS, TAXO-N, TAXO-S, NT and baselines) and
:class:`qd.algorithms.Aurora`.
"""

from qd.learned.autoencoders import ConvAutoencoder, MLPAutoencoder, reconstruction_error, stax_autoencoder, taxons_autoencoder
from qd.learned.layers import ConvDown, ConvUp
from qd.learned.training import AEState, Autoencoder, PaddedDataset, bucket_capacity, padded_dataset

__all__ = [
    "AEState",
    "Autoencoder",
    "ConvAutoencoder",
    "ConvDown",
    "ConvUp",
    "MLPAutoencoder",
    "PaddedDataset",
    "bucket_capacity",
    "padded_dataset",
    "reconstruction_error",
    "stax_autoencoder",
    "taxons_autoencoder",
]
