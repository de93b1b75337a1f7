"""Event data: the event representation, frame integration, the event-camera
emulator and the built-in DVSDigits data set."""

from .cifar10_dvs import CIFAR10DVS
from .digits import DVSDigits
from .emulator import emulate_events, emulate_events_batch, saccade_offsets, video_to_events
from .events import EVENT_DTYPE, check_event_fields, make_events, sort_events
from .folder_dataset import DatasetNotFoundError, EventFolderDataset
from .frame_cache import FrameCache
from .frames import SPLIT_MODES, events_to_frames
from .ncaltech101 import NCaltech101
from .nmnist import NMNIST
from .readers import EventFileError, EventRecording, read_events, read_frames_npz
from .splits import SPLITS

__all__ = [
    "EVENT_DTYPE",
    "SPLIT_MODES",
    "CIFAR10DVS",
    "DatasetNotFoundError",
    "DVSDigits",
    "EventFolderDataset",
    "FrameCache",
    "NCaltech101",
    "NMNIST",
    "SPLITS",
    "EventFileError",
    "EventRecording",
    "read_events",
    "read_frames_npz",
    "check_event_fields",
    "emulate_events",
    "emulate_events_batch",
    "events_to_frames",
    "make_events",
    "saccade_offsets",
    "sort_events",
    "video_to_events",
]
