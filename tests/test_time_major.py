"""The data/model contract: models take [T, B, ...] of their own T, and the library's loader yields exactly that."""

import pytest
import torch
from torch.utils.data import DataLoader

from spikeformers.data import collate_time_major, create_dataset, time_major_loader
from spikeformers.models import create_model


def test_a_model_refuses_a_number_of_time_steps_it_was_not_built_for():
    model = create_model("spikformer_tiny", time_steps=3)
    with pytest.raises(ValueError, match=r"built for T=3 but got T=4 .*time_major_loader.*build it with time_steps=4"):
        model(torch.rand(4, 2, 2, 24, 24))


def test_a_plain_dataloader_batch_of_another_size_than_t_is_refused_not_misread():
    dataset = create_dataset("dvs_digits", train=False, time_steps=4)
    frames, _ = next(iter(DataLoader(dataset, batch_size=8)))  # [B=8, T=4, ...]
    with pytest.raises(ValueError, match=r"built for T=4 but got T=8"):
        create_model("spikformer_tiny")(frames.float())


def test_time_major_loader_yields_contiguous_time_first_batches_that_keep_samples_apart():
    """With B == T a [B, T] batch would pass every shape check and mix samples; the loader's batch is
    [T, B], so each sample's logits equal those of the sample run alone."""
    torch.manual_seed(0)
    dataset = create_dataset("dvs_digits", train=False, time_steps=4)
    frames, labels = next(iter(time_major_loader(dataset, batch_size=4)))
    assert frames.shape == (4, 4, 2, 24, 24) and frames.is_contiguous() and labels.tolist() == [dataset[i][1] for i in range(4)]
    for b in range(4):
        assert torch.equal(frames[:, b], torch.as_tensor(dataset[b][0]))
    model = create_model("spikformer_tiny").eval()
    with torch.no_grad():
        together = model(frames.float())
        alone = torch.cat([model(frames[:, b:b + 1].float()) for b in range(4)])
    torch.testing.assert_close(together, alone)


def test_collate_time_major_refuses_an_empty_batch_and_the_loader_its_own_collate():
    with pytest.raises(ValueError, match="empty batch"):
        collate_time_major([])
    with pytest.raises(TypeError, match="sets collate_fn itself"):
        time_major_loader([], collate_fn=list)


def test_the_readmes_library_snippet_runs():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Using the library", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (32, 10)
