"""Data: the event representation and its readers, frame integration and resizing,
the ``[T, B, ...]`` batch, the event-camera emulator, and the data sets (event and
static images) by name.

Layout: the representation here (``events``, ``frames``, ``resize``,
``loader``, ``device_frames``, ``emulator``, ``visualize``); ``readers/`` (a
module per file format); ``datasets/`` (the event data sets, each a short
description, and the machinery that serves them); ``static/`` (CIFAR,
ImageNet); ``augment/`` (batched augmentation on the device); ``registry``
(data sets by name) and ``missing`` (the error for a data set not on disk);
``tonic`` (tonic's event arrays and data sets, ``tonic:NAME``).
"""

from .datasets import (CIFAR10DVS, NMNIST, DVSDigits, DVSGesture, EventDataset, EventFolderDataset, FrameCache,
                       NCaltech101)
from .datasets.splits import SPLITS
from .device_frames import DeviceFrames, DeviceFramesError
from .emulator import PixelModel, emulate_events, emulate_events_batch, saccade_offsets, video_to_events
from .events import EVENT_DTYPE, check_event_fields, make_events, sort_events
from .frames import SPLIT_MODES, events_to_frames, integrate
from .loader import collate_time_major, time_major, time_major_loader
from .missing import DatasetNotFoundError
from .readers import EventFileError, EventRecording, read_event_frames, read_events, read_frames_npz
from .registry import create_dataset, dataset_option_help, dataset_options, list_datasets, option, register_dataset
from .resize import RESIZE_MODES, resize_frames
from .static import CIFAR10, CIFAR100, ImageNet
from .tonic import TonicDataset, from_tonic_events, from_tonic_sensor_size, to_tonic_events, to_tonic_sensor_size

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
    "EventDataset",
    "EventFolderDataset",
    "FrameCache",
    "ImageNet",
    "NCaltech101",
    "NMNIST",
    "PixelModel",
    "SPLITS",
    "EventFileError",
    "EventRecording",
    "read_event_frames",
    "read_events",
    "read_frames_npz",
    "check_event_fields",
    "collate_time_major",
    "create_dataset",
    "dataset_option_help",
    "dataset_options",
    "emulate_events",
    "emulate_events_batch",
    "events_to_frames",
    "integrate",
    "list_datasets",
    "make_events",
    "option",
    "register_dataset",
    "resize_frames",
    "saccade_offsets",
    "sort_events",
    "TonicDataset",
    "from_tonic_events",
    "from_tonic_sensor_size",
    "to_tonic_events",
    "to_tonic_sensor_size",
    "time_major",
    "time_major_loader",
    "video_to_events",
]
