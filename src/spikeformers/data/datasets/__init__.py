"""The event data sets: each a description (``EventDataset``), the machinery that serves it
(layouts, discovery, splits, framing, the frame cache, ``EventFolderDataset``), and the
built-in ``DVSDigits``. Importing this package registers them."""

from .asl_dvs import ASLDVS
from .cifar10_dvs import CIFAR10DVS
from .digits import DVSDigits
from .dvs_gesture import DVSGesture
from .dvs_lip import DVSLip
from .event_dataset import EventDataset, UnsplitEventDataset
from .folder import EventFolderDataset
from .frame_cache import FrameCache
from .hardvs import HARDVS
from .hmdb51_dvs import HMDB51DVS
from .layouts import ClassFolders, ClassZips, spikingjelly_events, spikingjelly_frames
from .mat_folders import MatClassFolders
from .ncaltech101 import NCaltech101
from .ncars import NCARS
from .nmnist import NMNIST
from .splits import SPLITS
from .ucf101_dvs import UCF101DVS

__all__ = [
    "ASLDVS",
    "CIFAR10DVS",
    "ClassFolders",
    "ClassZips",
    "DVSDigits",
    "DVSGesture",
    "DVSLip",
    "EventDataset",
    "EventFolderDataset",
    "FrameCache",
    "HARDVS",
    "HMDB51DVS",
    "MatClassFolders",
    "NCARS",
    "NCaltech101",
    "NMNIST",
    "SPLITS",
    "UCF101DVS",
    "UnsplitEventDataset",
    "spikingjelly_events",
    "spikingjelly_frames",
]
