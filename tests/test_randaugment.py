"""timm's RandAugment and colour jitter on uint8 images (``data.augment.randaugment``):
each op against Pillow's own op (what timm calls) and on constructed images with a
known magnitude, the config-string parsing, determinism, and that the static data
sets apply it to training samples only."""

import math
import pickle

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from spikeformers.data.augment import ColorJitter, RandAugment, parse_randaugment
from spikeformers.data.augment import randaugment as ra
from spikeformers.data.static.cifar import CIFAR10
from spikeformers.data.static.imagenet import ImageNet
from spikeformers.data.registry import create_dataset, dataset_options


def noise_image(seed=0, height=29, width=23):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, height, width), dtype=np.uint8))


def ramp_image(height=29, width=23):
    ys, xs = np.mgrid[0:height, 0:width]
    return torch.from_numpy(np.stack([(xs * 11) % 256, (ys * 8) % 256, ((xs + ys) * 5) % 256]).astype(np.uint8))


def to_pil(image):
    return Image.fromarray(image.numpy().transpose(1, 2, 0))


def from_pil(picture):
    return torch.from_numpy(np.asarray(picture).transpose(2, 0, 1).copy())


def grey_levels_apart(ours, theirs):
    return int((ours.int() - theirs.int()).abs().max())


IMAGES = [noise_image(), ramp_image()]


# --------------------------------------------------------------- each op against Pillow

@pytest.mark.parametrize("image", IMAGES, ids=["noise", "ramp"])
def test_lookup_table_ops_equal_pillow(image):
    picture = to_pil(image)
    assert torch.equal(ra.auto_contrast(image), from_pil(ImageOps.autocontrast(picture)))
    assert torch.equal(ra.equalize(image), from_pil(ImageOps.equalize(picture)))
    assert torch.equal(ra.invert(image), from_pil(ImageOps.invert(picture)))
    for threshold in (0, 26, 128, 256):
        assert torch.equal(ra.solarize(image, threshold), from_pil(ImageOps.solarize(picture, threshold)))
    for bits in (1, 4, 7):
        assert torch.equal(ra.posterize(image, bits), from_pil(ImageOps.posterize(picture, bits)))
    # 0 bits (PosterizeIncreasing at m10): black, as Pillow gave before it began refusing 0 bits.
    assert not ra.posterize(image, 0).any()


@pytest.mark.parametrize("image", IMAGES, ids=["noise", "ramp"])
@pytest.mark.parametrize("factor", [0.1, 0.55, 1.0, 1.9])
def test_enhancements_match_pillow_image_enhance(image, factor):
    picture = to_pil(image)
    for ours, theirs in ((ra.color, ImageEnhance.Color), (ra.contrast, ImageEnhance.Contrast),
                         (ra.brightness, ImageEnhance.Brightness), (ra.sharpness, ImageEnhance.Sharpness)):
        assert grey_levels_apart(ours(image, factor), from_pil(theirs(picture).enhance(factor))) <= 1, ours.__name__


@pytest.mark.parametrize("interpolation, resample", [("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR),
                                                     ("bicubic", Image.BICUBIC)])
def test_geometric_ops_match_pillow_transform(interpolation, resample):
    fill = (125, 123, 114)
    for image in IMAGES:
        picture = to_pil(image)
        size = picture.size
        cases = [
            (ra.rotate(image, -17.3, fill=fill, interpolation=interpolation),
             picture.rotate(-17.3, resample=resample, fillcolor=fill)),
            (ra.shear_x(image, 0.27, fill=fill, interpolation=interpolation),
             picture.transform(size, Image.AFFINE, (1, 0.27, 0, 0, 1, 0), resample=resample, fillcolor=fill)),
            (ra.shear_y(image, -0.3, fill=fill, interpolation=interpolation),
             picture.transform(size, Image.AFFINE, (1, 0, 0, -0.3, 1, 0), resample=resample, fillcolor=fill)),
            (ra.translate_x(image, -4.6, fill=fill, interpolation=interpolation),
             picture.transform(size, Image.AFFINE, (1, 0, -4.6, 0, 1, 0), resample=resample, fillcolor=fill)),
            (ra.translate_y(image, 3.7, fill=fill, interpolation=interpolation),
             picture.transform(size, Image.AFFINE, (1, 0, 0, 0, 1, 3.7), resample=resample, fillcolor=fill)),
        ]
        for ours, theirs in cases:
            assert grey_levels_apart(ours, from_pil(theirs)) <= 1


def test_solarize_add_adds_below_128_and_saturates():
    image = torch.tensor([0, 100, 127, 128, 250], dtype=torch.uint8).view(1, 1, 5).expand(3, 1, 5)
    assert ra.apply_op(image, "SolarizeAdd", 10)[0, 0].tolist() == [110, 210, 237, 128, 250]  # add int(110 * 1.0)
    assert ra.solarize_add(image, 200)[0, 0].tolist() == [200, 255, 255, 128, 250]


# --------------------------------------------------------------- ops at a known magnitude

def lit_pixel(height, width, row, col):
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[:, row, col] = 255
    return image


def test_rotating_a_lit_pixel_moves_it_about_the_centre():
    # 90 degrees anticlockwise about the centre (4.5, 4.5) of a 9x9 image: (row 1, col 4) -> (row 4, col 1).
    rotated = ra.rotate(lit_pixel(9, 9, 1, 4), 90.0, fill=(0, 0, 0), interpolation="nearest")
    assert rotated[0].nonzero().tolist() == [[4, 1]]
    # Rotate at magnitude 10 turns by 30 degrees; the sign chooses the direction (Pillow: positive = anticlockwise).
    image = lit_pixel(21, 21, 2, 10)
    for sign in (1.0, -1.0):
        ours = ra.apply_op(image, "Rotate", 10, sign, fill=(0, 0, 0), interpolation="nearest")
        theirs = from_pil(to_pil(image).rotate(30 * sign, resample=Image.NEAREST))
        assert torch.equal(ours, theirs) and ours[0].nonzero().tolist() == theirs[0].nonzero().tolist()
        (row, col), = ours[0].nonzero().tolist()
        assert (col < 10) == (sign > 0)  # the top pixel swings left when turning anticlockwise


def test_translate_rel_shifts_by_045_of_the_side_and_fills_with_the_mean_grey():
    image = ramp_image(10, 20)
    shifted = ra.apply_op(image, "TranslateXRel", 10, 1.0, fill=(1, 2, 3), interpolation="bilinear")
    assert torch.equal(shifted[:, :, :11], image[:, :, 9:])  # 0.45 * 20 = 9 pixels to the left
    assert shifted[:, :, 11:].flatten(1).unique(dim=1).tolist() == [[1], [2], [3]]
    down = ra.apply_op(image, "TranslateYRel", 5, -1.0, fill=(0, 0, 0), interpolation="nearest")
    assert torch.equal(down[:, 2:], image[:, :8])  # 0.45 * 0.5 * 10 = 2.25 rows, down for the negative sign


def test_shear_moves_a_lit_pixel_by_factor_times_its_row():
    # ShearX at magnitude 10 has factor 0.3: output (x, y) reads input x + 0.3 y, so row 10 shifts left by 3.
    sheared = ra.apply_op(lit_pixel(12, 12, 10, 8), "ShearX", 10, 1.0, fill=(0, 0, 0), interpolation="nearest")
    assert sheared[0].nonzero().tolist() == [[10, 5]]


def test_solarize_and_posterize_levels_plain_and_increasing():
    values = torch.tensor([0, 25, 26, 127, 128, 200], dtype=torch.uint8).view(1, 1, -1).expand(3, 1, -1)
    # Solarize: threshold int(256 L) (128 at m5); SolarizeIncreasing: 256 - int(256 L) (26 at m9).
    assert ra.apply_op(values, "Solarize", 5)[0, 0].tolist() == [0, 25, 26, 127, 127, 55]
    assert ra.apply_op(values, "SolarizeIncreasing", 9)[0, 0].tolist() == [0, 25, 229, 128, 127, 55]
    # Posterize keeps int(4 L) bits (2 at m5); PosterizeIncreasing keeps 4 - int(4 L) (1 at m9, 4 at m0).
    assert ra.apply_op(values, "Posterize", 5)[0, 0].tolist() == [0, 0, 0, 64, 128, 192]
    assert ra.apply_op(values, "PosterizeIncreasing", 9)[0, 0].tolist() == [0, 0, 0, 0, 128, 128]
    assert ra.apply_op(values, "PosterizeIncreasing", 0)[0, 0].tolist() == [0, 16, 16, 112, 128, 192]
    assert torch.equal(ra.apply_op(values, "Invert", 3), 255 - values)


def test_equalize_spreads_a_two_level_histogram_to_black_and_white():
    image = torch.full((3, 32, 32), 10, dtype=torch.uint8)
    image[:, 16:] = 20
    # Pillow's rule: step = (1024 - 512) // 255 = 2; 10 -> (1 + 0) // 2 = 0, 20 -> (1 + 512) // 2, clipped to 255.
    assert ra.equalize(image).unique().tolist() == [0, 255]
    assert torch.equal(ra.equalize(image)[:, 16:], torch.full((3, 16, 32), 255, dtype=torch.uint8))
    # A single level (or too few pixels for a step) is left as it is.
    flat = torch.full((3, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(ra.equalize(flat), flat)


def test_enhancement_factors_of_the_plain_and_increasing_ops():
    image = torch.tensor([[[40, 201]], [[100, 100]], [[160, 0]]], dtype=torch.uint8)
    # Brightness at m5: factor 1.8 * 0.5 + 0.1 = 1.0 leaves the image; at m0 the factor is 0.1.
    assert torch.equal(ra.apply_op(image, "Brightness", 5), image)
    assert ra.apply_op(image, "Brightness", 0)[:, 0].tolist() == [[4, 20], [10, 10], [16, 0]]
    # BrightnessIncreasing at m10: factor 1 +- 0.9 -> 1.9 or 0.1.
    assert ra.apply_op(image, "BrightnessIncreasing", 10, 1.0)[:, 0].tolist() == [[76, 255], [190, 190], [255, 0]]
    assert ra.apply_op(image, "BrightnessIncreasing", 10, -1.0)[:, 0].tolist() == [[4, 20], [10, 10], [16, 0]]
    # Colour factor 0 is the luma grey (Pillow's 0.299 R + 0.587 G + 0.114 B, rounded).
    grey = ra.color(image, 0.0)
    assert grey[:, 0, 0].tolist() == [round(0.299 * 40 + 0.587 * 100 + 0.114 * 160)] * 3
    # Contrast factor 0 is the mean luma everywhere.
    assert ra.contrast(image, 0.0).unique().tolist() == [int(ra.luminance(image).double().mean() + 0.5)]


def test_op_errors_name_the_culprit():
    with pytest.raises(ValueError, match="uint8 image"):
        ra.apply_op(torch.zeros(3, 4, 4), "Invert", 5)
    with pytest.raises(ValueError, match="'Cutout'"):
        ra.apply_op(torch.zeros(3, 4, 4, dtype=torch.uint8), "Cutout", 5)
    with pytest.raises(ValueError, match="interpolation 'area'"):
        ra.affine(torch.zeros(3, 4, 4, dtype=torch.uint8), (1, 0, 0, 0, 1, 0), interpolation="area")


# --------------------------------------------------------------- the config string

def test_parse_the_recipes_strings_and_timm_defaults():
    cifar = parse_randaugment("rand-m9-n1-mstd0.4-inc1")
    assert (cifar.magnitude, cifar.num_ops, cifar.magnitude_std, cifar.magnitude_max) == (9, 1, 0.4, 10)
    assert cifar.increasing and cifar.ops == ra.RAND_INCREASING_OPS and not cifar.weighted
    imagenet = parse_randaugment("rand-m9-mstd0.5-inc1")
    assert (imagenet.magnitude, imagenet.num_ops, imagenet.magnitude_std) == (9, 2, 0.5)
    plain = parse_randaugment("rand")
    assert (plain.magnitude, plain.num_ops, plain.magnitude_std, plain.increasing) == (10, 2, 0.0, False)
    assert plain.ops == ra.RAND_OPS and len(plain.ops) == 15
    assert parse_randaugment("rand-mstd101").magnitude_std == math.inf  # timm: uniform in [0, m]
    assert parse_randaugment("rand-m15-mmax20-w0-inc0").magnitude_max == 20
    assert parse_randaugment("rand-w0").weighted


@pytest.mark.parametrize("config, message", [
    ("auto-m9", "start with 'rand'"), ("rand-x3", "cannot read 'x3'"), ("rand-m", "cannot read 'm'"),
    ("rand-m9-m8", "sets 'm' twice"), ("rand-inc2", "inc is 0 or 1"), ("rand-w1", "w0"),
    ("rand-m9.5", "integer"), ("rand-n0", "n \\(ops per image\\)"), ("", "config string"), (None, "config string"),
])
def test_bad_config_strings_are_named(config, message):
    with pytest.raises(ValueError, match=message):
        parse_randaugment(config)


def test_bad_fill_interpolation_and_jitter_are_named():
    with pytest.raises(ValueError, match="fill"):
        RandAugment("rand", fill=(0, 300, 0))
    with pytest.raises(ValueError, match="interpolation 'area'"):
        RandAugment("rand", interpolation="area")
    with pytest.raises(ValueError, match="color_jitter"):
        ColorJitter(-0.1)


# --------------------------------------------------------------- randomness

def test_same_generator_seed_same_images_and_draws_vary_between_samples():
    augment = RandAugment("rand-m9-n2-mstd0.5-inc1", fill=(124, 116, 104))
    image = ramp_image(16, 16)
    first = [augment(image, torch.Generator().manual_seed(seed)) for seed in range(12)]
    again = [augment(image, torch.Generator().manual_seed(seed)) for seed in range(12)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len({tuple(a.flatten().tolist()) for a in first}) > 6
    torch.manual_seed(3)  # without a generator: torch's global one
    global_draws = augment(image)
    torch.manual_seed(3)
    assert torch.equal(augment(image), global_draws)


def test_each_chosen_op_runs_with_probability_one_half():
    # With one op per image at m10, every op but Solarize (threshold 256) alters this ramp,
    # so about 0.5 * 14 / 15 of the images change.
    augment = RandAugment("rand-n1-m10", interpolation="nearest")
    image = ramp_image(8, 8)
    generator = torch.Generator().manual_seed(0)
    changed = sum(not torch.equal(augment(image, generator), image) for _ in range(400))
    assert 0.38 * 400 < changed < 0.56 * 400
    assert torch.equal(RandAugment("rand-n3", prob=0.0)(image, generator), image)


def test_color_jitter_scales_a_grey_image_by_a_factor_in_range():
    # On a flat grey image contrast and saturation do nothing, so only the brightness factor shows.
    image = torch.full((3, 4, 4), 100, dtype=torch.uint8)
    jitter, generator = ColorJitter(0.5), torch.Generator().manual_seed(1)
    levels = [int(jitter(image, generator)[0, 0, 0]) for _ in range(200)]
    assert 50 <= min(levels) < 70 and 130 < max(levels) <= 150
    assert torch.equal(ColorJitter(0.0)(ramp_image(), generator), ramp_image())


# --------------------------------------------------------------- the static data sets

def write_cifar10(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}))


def test_cifar_applies_randaugment_to_training_samples_only(tmp_path):
    write_cifar10(tmp_path)
    options = dict(randaugment="rand-m9-n3-mstd0.4-inc1", color_jitter=0.5)
    plain_train = create_dataset("cifar10", train=True, time_steps=2, root=str(tmp_path))
    train = create_dataset("cifar10", train=True, time_steps=2, root=str(tmp_path), **options)
    plain_test = create_dataset("cifar10", train=False, time_steps=2, root=str(tmp_path))
    test = create_dataset("cifar10", train=False, time_steps=2, root=str(tmp_path), **options)
    torch.manual_seed(0)
    assert any(not torch.equal(train[i][0], plain_train[i][0]) for i in range(len(train)))
    assert all(torch.equal(test[i][0], plain_test[i][0]) for i in range(len(test)))
    assert train[0][0].shape == (2, 3, 32, 32) and train[0][1] == 1
    # The fill is the data set's mean in grey levels, as timm's img_mean.
    assert train.augment.randaugment.fill == (125, 123, 114)
    assert "RandAugment(m=9, n=3" in train.describe() and "RandAugment" not in test.describe()
    torch.manual_seed(5)
    first = train[1][0]
    torch.manual_seed(5)
    assert torch.equal(train[1][0], first)


def test_registry_lists_the_options_and_bad_strings_fail_at_construction(tmp_path):
    for name in ("cifar10", "cifar100", "imagenet"):
        options = dataset_options(name)
        assert options["randaugment"] is None and options["color_jitter"] is None
        assert options["randaugment_interpolation"] == "random"
    write_cifar10(tmp_path)
    with pytest.raises(ValueError, match="cannot read 'q3'"):
        CIFAR10(tmp_path, train=False, randaugment="rand-m9-q3")


def test_imagenet_applies_randaugment_after_the_crop_on_training_images_only(tmp_path):
    root = tmp_path / "imagenet"
    rng = np.random.default_rng(1)
    for wnid in ("n01440764", "n01443537"):
        for part in ("train", "val"):
            (root / part / wnid).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / part / wnid / "a.png")
    options = dict(image_size=16, expected_classes=None, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0)
    plain = ImageNet(root, train=True, **options)
    augmented = ImageNet(root, train=True, randaugment="rand-m9-n3-mstd0.5-inc1", **options)
    torch.manual_seed(0)
    assert any(not np.array_equal(augmented.image(i % 2), plain.image(i % 2)) for i in range(6))
    assert augmented.image(0).shape == (3, 16, 16)
    val_plain = ImageNet(root, train=False, **options)
    val = ImageNet(root, train=False, randaugment="rand-m9-n3-mstd0.5-inc1", **options)
    assert np.array_equal(val.image(0), val_plain.image(0))
    assert augmented.augment.randaugment.fill == (124, 116, 104)
