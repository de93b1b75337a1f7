"""The published configurations added to the first-wave families (their DVS128 Gesture, CIFAR and ImageNet
files): each one's structure as the authors' file builds it, and its parameter count, which is the
authors' model's as created (built from their file in a side environment, or read from their training
logs), less the tensors their forward never uses."""

import pytest
import torch

from spikeformers.models import count_parameters, create_model


@pytest.mark.parametrize("name, authors, unused", [
    # Spikingformer: the unused LayerNorms, 2 x 2D per block; counts from the authors' logs
    ("spikingformer_gesture", 2_568_714 + 257, 2 * 4 * 256),
    ("spikingformer_gesture_t10", 2_568_714 + 257, 2 * 4 * 256),
    ("spikingformer_cifar10", 9_326_266, 4 * 4 * 384),
    ("spikingformer_cifar100", 9_360_916, 4 * 4 * 384),
    pytest.param("spikingformer_imagenet_8_512", 29_705_768, 8 * 4 * 512, marks=pytest.mark.slow),
    pytest.param("spikingformer_imagenet_8_768", 66_363_208, 8 * 4 * 768, marks=pytest.mark.slow),
    # built from the authors' files: QKFormer's dvs128-gesture/model.py, SGLFormer's dvs128-gesture and cifar
    # files, the Spike-driven Transformer's model for conf/gesture (its unused talking-heads Conv1d, 8x8 per block)
    ("qkformer_gesture", 1_999_371, 0),
    ("sglformer_gesture_t10", 4_066_387, 0),
    ("sglformer_gesture", 4_066_387 + 256 * 64 * 6, 0),  # the head's kernel spans 64 tokens x T
    ("sglformer_cifar10", 8_852_874, 0),
    ("sglformer_cifar100", 8_887_524, 0),
    ("spike_driven_gesture", 2_567_051, 2 * 64),
    ("spike_driven_gesture_t10", 2_567_051, 2 * 64),
])
def test_parameter_count_is_the_authors(name, authors, unused):
    assert count_parameters(create_model(name)) == authors - unused


# The READMEs' smaller CIFAR models: their tables round the counts as created (the unused LayerNorms
# included) to 0.01M; the exact counts are pinned, and checked against the rounding.
@pytest.mark.parametrize("name, exact, readme_millions, depth, dim", [
    ("spikingformer_cifar10_4_256", 4_152_106, 4.15, 4, 256),
    ("spikingformer_cifar10_2_384", 5_762_746, 5.76, 2, 384),
    ("cml_spikingformer_cifar10_4_256", 4_152_106, 4.15, 4, 256),
    ("cml_spikingformer_cifar10_2_384", 5_762_746, 5.76, 2, 384),
    ("cml_spikformer_cifar10_4_256", 4_155_178, 4.15, 4, 256),
    ("cml_spikformer_cifar10_2_384", 5_765_050, 5.76, 2, 384),
    ("spikingformer_cifar100_4_256", 4_175_236, None, 4, 256),
    ("cml_spikformer_cifar100_2_384", 5_799_700, None, 2, 384),
])
def test_smaller_cifar_models_match_the_readme_counts(name, exact, readme_millions, depth, dim):
    count = count_parameters(create_model(name))
    assert count == exact
    if readme_millions is not None:
        assert int((count + depth * 4 * dim) / 1e4) / 100 == readme_millions  # the README truncates


def test_gesture_configurations_have_eleven_classes_and_the_dvs_geometry():
    with torch.device("meta"):
        for name in ("spikingformer_gesture", "qkformer_gesture", "sglformer_gesture", "spike_driven_gesture"):
            model = create_model(name)
            assert (model.num_classes, model.in_channels, model.img_size) == (11, 2, (128, 128)), name


def test_spike_driven_gesture_takes_full_frames_without_erode():
    """conf/gesture: 128x128 frames (no 2x2 average), pooling_stat "0111", dvs_mode off (train.py sets it for
    CIFAR10-DVS only)."""
    with torch.device("meta"):
        model = create_model("spike_driven_gesture")
    assert model.input_pool == 1 and model.patch_embed.grid_size == (16, 16)
    assert all(block.attn.erode is None for block in model.blocks)


def test_qkformer_gesture_widens_the_mlp():
    with torch.device("meta"):
        gesture, dvs = create_model("qkformer_gesture"), create_model("qkformer_dvs")
    hidden = lambda m: m.stages[0][0].mlp.fc1.linear.out_features  # noqa: E731
    assert hidden(gesture) == 4 * 128 and hidden(dvs) == 128  # stage 1 is D/2 wide


def test_sglformer_cifar_tokenizer_pools_only_in_its_last_two_stages():
    with torch.device("meta"):
        model = create_model("sglformer_cifar10")
    assert [u.pool is not None for u in model.tokenizer] == [False, False, True, True]
    assert model.grid_size == (8, 8)
    with pytest.raises(ValueError, match="tokenizer_pool_stages"):
        create_model("sglformer_cifar10", tokenizer_pool_stages=(4,))
