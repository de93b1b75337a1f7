"""The static-image data sets (CIFAR-10/100, ImageNet), repeated over T (direct encoding), and
what only they use. Importing this package registers them."""

from .cifar import CIFAR10, CIFAR100
from .imagenet import ImageNet

__all__ = ["CIFAR10", "CIFAR100", "ImageNet"]
