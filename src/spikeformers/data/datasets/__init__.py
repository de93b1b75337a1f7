"""The event data sets: each a description (``EventDataset``), the machinery that serves it
(layouts, discovery, splits, framing, the frame cache, ``EventFolderDataset``), and the
built-in ``DVSDigits``. Importing this package registers them."""

from .cifar10_dvs import CIFAR10DVS
from .digits import DVSDigits
from .dvs_gesture import DVSGesture
from .event_dataset import EventDataset, UnsplitEventDataset
from .folder import EventFolderDataset
from .frame_cache import FrameCache
from .layouts import ClassFolders, ClassZips, spikingjelly_events, spikingjelly_frames
from .ncaltech101 import NCaltech101
from .nmnist import NMNIST
from .splits import SPLITS

__all__ = [
    "CIFAR10DVS",
    "ClassFolders",
    "ClassZips",
    "DVSDigits",
    "DVSGesture",
    "EventDataset",
    "EventFolderDataset",
    "FrameCache",
    "NCaltech101",
    "NMNIST",
    "SPLITS",
    "UnsplitEventDataset",
    "spikingjelly_events",
    "spikingjelly_frames",
]
