"""DVS-Lip (Tan et al. 2022): 100 spoken words, lips recorded by a DAVIS346 and cropped to
128x128, 40 speakers, 14,896 train and 4,975 test recordings.

Layout: the extracted ``DVS-Lip.zip``, one ``.npy`` structured array per recording
(``readers.npy``: fields t, x, y, p), ``<root>/{train|test}/<word>/<i>.npy`` (or under
``<root>/DVS-Lip``). The split is the official one (speakers apart); the part is chosen by
``train``. The 100 words are the classes in alphabetical order, as the authors' code
(``sorted(os.listdir(...))``) and tonic label them.
"""

from __future__ import annotations

from ..registry import option, register_dataset
from .event_dataset import EventDataset
from .layouts import ClassFolders, Found

CLASSES = (
    "accused", "action", "allow", "allowed", "america", "american", "another", "around", "attacks", "banks",
    "become", "being", "benefit", "benefits", "between", "billion", "called", "capital", "challenge", "change",
    "chief", "couple", "court", "death", "described", "difference", "different", "during", "economic",
    "education", "election", "england", "evening", "everything", "exactly", "general", "germany", "giving",
    "ground", "happen", "happened", "having", "heavy", "house", "hundreds", "immigration", "judge", "labour",
    "leaders", "legal", "little", "london", "majority", "meeting", "military", "million", "minutes", "missing",
    "needs", "number", "numbers", "paying", "perhaps", "point", "potential", "press", "price", "question",
    "really", "right", "russia", "russian", "saying", "security", "several", "should", "significant", "spend",
    "spent", "started", "still", "support", "syria", "syrian", "taken", "taking", "terms", "these", "thing",
    "think", "times", "tomorrow", "under", "warning", "water", "welcome", "words", "worst", "years", "young",
)
SAMPLES = {True: 14_896, False: 4_975}


@register_dataset("dvs_lip")
class DVSLip(EventDataset):
    """DVS-Lip as ``(float32 frames [T, 2, 128, 128], word)``; see the module docstring."""

    name = "dvs_lip"
    title = "DVS-Lip"
    published = ("DVS-Lip is published by Tan, Wang, Han, Cao, Wu and Zha 2022 ('Multi-Grained Spatio-Temporal "
                 "Features Perceived Network for Event-Based Lip-Reading', CVPR), "
                 "https://sites.google.com/view/event-based-lipreading : download DVS-Lip.zip (Google Drive) and "
                 "extract it into the data root")
    sensor_size = (128, 128)
    classes = CLASSES
    class_folder = "<word>"
    parts = {True: "train", False: "test"}
    layouts = (ClassFolders("npy", (".npy",), "npy", ("{part}", "DVS-Lip/{part}"), files="<i>.npy",
                            what="the word folders of .npy recordings"),)

    expected_samples: int | None | bool = option(
        True, "samples a complete part holds (True: 14,896 train, 4,975 test; None or False: no warning)")

    def check_complete(self, found: Found) -> None:
        expected = SAMPLES[bool(self.train)] if self.expected_samples is True else self.expected_samples
        if expected and found.count() != expected:
            self.warn_incomplete(found.folder, f"{expected:,} samples", f"{found.count():,}")
