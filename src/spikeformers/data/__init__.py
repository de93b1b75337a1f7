"""Data: the event representation and its readers, frame integration and resizing,
the event-camera emulator, and the data sets (event and static images) by name."""

from .cifar import CIFAR10, CIFAR100
from .cifar10_dvs import CIFAR10DVS
from .device_frames import DeviceFrames, DeviceFramesError
from .digits import DVSDigits
from .dvs_gesture import DVSGesture
from .emulator import emulate_events, emulate_events_batch, saccade_offsets, video_to_events
from .events import EVENT_DTYPE, check_event_fields, make_events, sort_events
from .folder_dataset import DatasetNotFoundError, EventFolderDataset
from .frame_cache import FrameCache
from .frames import SPLIT_MODES, events_to_frames
from .loader import collate_time_major, time_major_loader
from .imagenet import ImageNet
from .ncaltech101 import NCaltech101
from .nmnist import NMNIST
from .readers import EventFileError, EventRecording, read_event_frames, read_events, read_frames_npz
from .registry import create_dataset, dataset_options, list_datasets, register_dataset
from .resize import RESIZE_MODES, resize_frames
from .splits import SPLITS

__all__ = [
    "EVENT_DTYPE",
    "RESIZE_MODES",
    "SPLIT_MODES",
    "CIFAR10",
    "CIFAR100",
    "CIFAR10DVS",
    "DatasetNotFoundError",
    "DeviceFrames",
    "DeviceFramesError",
    "DVSDigits",
    "DVSGesture",
    "EventFolderDataset",
    "FrameCache",
    "ImageNet",
    "NCaltech101",
    "NMNIST",
    "SPLITS",
    "EventFileError",
    "EventRecording",
    "read_event_frames",
    "read_events",
    "read_frames_npz",
    "check_event_fields",
    "collate_time_major",
    "create_dataset",
    "dataset_options",
    "emulate_events",
    "emulate_events_batch",
    "events_to_frames",
    "list_datasets",
    "make_events",
    "register_dataset",
    "resize_frames",
    "saccade_offsets",
    "sort_events",
    "time_major_loader",
    "video_to_events",
]
