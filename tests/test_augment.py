"""Batched augmentation: what each op does to a batch, checked pixel by pixel.

Geometry is checked on constructed frames (a single lit pixel goes exactly
where the transform says, for a known parameter applied through the op's
apply step); the random steps are checked for one transform per sample
(shared by its T frames, different across samples) and for determinism.
Every test runs on the CPU, and also on CUDA where a GPU is present.
"""

import math

import pytest
import torch

from spikeformers.data.augment import (
    EventMix,
    MixupCutmix,
    SNNAugmentWide,
    WideParams,
    affine,
    crop,
    cutout,
    draw_crop_offsets,
    draw_cutout_boxes,
    draw_erasing_boxes,
    draw_hflip,
    draw_rotation,
    draw_shear,
    draw_translation,
    erase,
    hflip,
    random_crop,
    random_erasing,
    random_hflip,
    random_rotate,
    random_shear,
    random_translate,
    smooth_one_hot,
    translate,
)
from spikeformers.data.augment.mixing import MixDraw
from spikeformers.data.augment.wide import OPS

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def lit(height, width, y, x, T=3, B=1, C=2, device="cpu", dtype=torch.float32):
    """Frames with one pixel lit (value 1) in every frame and channel of every sample."""
    frames = torch.zeros(T, B, C, height, width, device=device, dtype=dtype)
    frames[..., y, x] = 1
    return frames


def lit_pixels(frames, t=0, b=0, c=0):
    """The (row, column) pairs that are non-zero in one frame of one sample."""
    return sorted(tuple(p) for p in torch.nonzero(frames[t, b, c]).tolist())


def assert_same_in_every_frame(out):
    """One transform per sample: every frame and channel of a sample looks alike (frames built so)."""
    assert torch.equal(out, out[:1, :, :1].expand_as(out))


RANDOM_OPS = {
    "hflip": lambda x, g: random_hflip(x, 0.5, g),
    "crop": lambda x, g: random_crop(x, 3, generator=g),
    "rotate": lambda x, g: random_rotate(x, 30.0, g),
    "shear": lambda x, g: random_shear(x, 20.0, 10.0, g),
    "translate": lambda x, g: random_translate(x, 3, g),
    "cutout": lambda x, g: cutout(x, 6, g),
    "erasing": lambda x, g: random_erasing(x, 1.0, generator=g),
    "wide": lambda x, g: SNNAugmentWide()(x, g),
}


# --------------------------------------------------------------------------- translation (the training loop's op)

def test_translate_moves_every_frame_of_a_sample_by_the_same_whole_pixels():
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 16, 2, 9, 11)  # [T, B, C, H, W]
    out = random_translate(frames, 2, generator=torch.Generator().manual_seed(0))
    shifts = torch.randint(-2, 3, (2, 16), generator=g)  # the draws random_translate makes
    for b in range(16):
        dy, dx = shifts[:, b].tolist()
        expected = torch.zeros_like(frames[:, b])
        src = frames[:, b, :, max(0, -dy):9 - max(0, dy), max(0, -dx):11 - max(0, dx)]
        expected[..., max(0, dy):max(0, dy) + src.shape[-2], max(0, dx):max(0, dx) + src.shape[-1]] = src
        assert torch.equal(out[:, b], expected), f"sample {b} shifted by {(dy, dx)}"
    assert shifts.abs().max() == 2 and (shifts != 0).any()


def test_translate_by_zero_is_the_identity_and_bad_input_is_named():
    frames = torch.rand(2, 3, 2, 5, 5)
    assert random_translate(frames, 0) is frames
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        random_translate(frames[0], 1)
    with pytest.raises(ValueError, match="max_shift"):
        random_translate(frames, -1)


def test_translate_moves_a_lit_pixel_down_and_right_and_drops_it_off_the_edge(device):
    frames = lit(6, 7, 2, 3, B=3, device=device)
    out = translate(frames, torch.tensor([1, -2, 0]), torch.tensor([2, 0, 4]))
    assert lit_pixels(out, b=0) == [(3, 5)]
    assert lit_pixels(out, b=1) == [(0, 3)]
    assert lit_pixels(out, b=2) == []  # x = 3 + 4 = 7 is outside a width of 7
    assert_same_in_every_frame(out)


# --------------------------------------------------------------------------- flip

def test_hflip_sends_column_x_to_w_minus_1_minus_x_only_in_the_chosen_samples(device):
    frames = lit(5, 7, 1, 2, B=2, device=device)
    out = hflip(frames, torch.tensor([True, False]))
    assert lit_pixels(out, b=0) == [(1, 4)]
    assert lit_pixels(out, b=1) == [(1, 2)]
    assert_same_in_every_frame(out)


def test_hflip_draw_has_the_asked_probability():
    flips = draw_hflip(4000, 0.3, seeded())
    assert flips.dtype == torch.bool and abs(flips.float().mean().item() - 0.3) < 0.03
    assert not draw_hflip(50, 0.0, seeded()).any() and draw_hflip(50, 1.0, seeded()).all()


# --------------------------------------------------------------------------- crop with padding

def test_crop_places_the_pixel_at_its_position_in_the_padded_frame_minus_the_offset(device):
    frames = lit(8, 8, 5, 1, B=2, device=device)
    out = crop(frames, top=torch.tensor([1, 6]), left=torch.tensor([4, 2]), padding=3)
    # padded position (5 + 3, 1 + 3) = (8, 4)
    assert lit_pixels(out, b=0) == [(7, 0)]
    assert lit_pixels(out, b=1) == [(2, 2)]
    small = crop(frames, top=torch.tensor([7, 0]), left=torch.tensor([3, 0]), padding=3, size=(4, 2))
    assert small.shape == (3, 2, 2, 4, 2)
    assert lit_pixels(small, b=0) == [(1, 1)] and lit_pixels(small, b=1) == []


def test_crop_offsets_cover_the_whole_padded_range_and_reject_a_too_large_crop():
    top, left = draw_crop_offsets(3000, 10, 12, 2, generator=seeded())
    assert (top.min(), top.max(), left.min(), left.max()) == (0, 4, 0, 4)
    top, left = draw_crop_offsets(3000, 10, 12, 1, size=(8, 12), generator=seeded())
    assert (top.min(), top.max(), left.min(), left.max()) == (0, 4, 0, 2)
    with pytest.raises(ValueError, match="larger than the padded frame"):
        draw_crop_offsets(2, 10, 12, 1, size=(13, 12))
    with pytest.raises(ValueError, match="padding"):
        random_crop(torch.zeros(1, 1, 1, 4, 4), -1)


# --------------------------------------------------------------------------- rotation

@pytest.mark.parametrize("angle, expected", [(90.0, (0, 2)), (-90.0, (4, 2)), (180.0, (2, 0)), (0.0, (2, 4))])
def test_rotation_by_right_angles_is_counter_clockwise_about_the_centre(device, angle, expected):
    out = affine(lit(5, 5, 2, 4, device=device), angle=angle)  # 2 pixels right of the centre
    assert lit_pixels(out) == [expected]
    assert_same_in_every_frame(out)


def test_rotation_by_30_degrees_lights_the_pixels_that_map_back_to_the_source(device):
    size, centre, source = 21, 10, (10, 18)  # 8 pixels right of the centre
    out = affine(lit(size, size, *source, device=device), angle=30.0)
    # Forward: (x, y) = (8, 0) turns counter-clockwise (upwards) to (8 cos 30, -8 sin 30) = (6.93, -4).
    assert (6, 17) in lit_pixels(out)
    # Nearest sampling: an output pixel is lit iff its centre, turned back by 30 degrees, rounds to the source.
    a = math.radians(30.0)
    expected = []
    for row in range(size):
        for col in range(size):
            x, y = col - centre, row - centre
            back_x, back_y = x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)
            if (round(back_y) + centre, round(back_x) + centre) == source:
                expected.append((row, col))
    assert lit_pixels(out) == expected


def test_rotation_draws_one_angle_per_sample_shared_by_its_frames():
    angles = draw_rotation(2000, 15.0, seeded())
    assert angles.abs().max() <= 15.0 and angles.min() < -14 and angles.max() > 14
    frames = lit(21, 21, 10, 18, B=6)
    out = random_rotate(frames, 90.0, seeded(3))
    assert_same_in_every_frame(out)
    assert len({tuple(lit_pixels(out, b=b)) for b in range(6)}) == 6


# --------------------------------------------------------------------------- shear

def test_shear_x_moves_a_pixel_below_the_centre_by_minus_tan_times_its_row(device):
    frames = lit(9, 9, 8, 4, device=device)  # 4 rows below the centre (4, 4)
    assert lit_pixels(affine(frames, shear_x=45.0)) == [(8, 0)]  # x' = 0 - tan(45) * 4
    assert lit_pixels(affine(frames, shear_x=-45.0)) == [(8, 8)]
    # x' = -4 tan 20 = -1.456: column 3 is the one whose centre maps back to 4 (3 + 1.456 rounds to 4).
    assert lit_pixels(affine(frames, shear_x=20.0)) == [(8, 3)]


def test_shear_y_moves_a_pixel_right_of_the_centre_by_minus_tan_times_its_column(device):
    frames = lit(9, 9, 4, 7, device=device)  # 3 columns right of the centre
    assert lit_pixels(affine(frames, shear_y=45.0)) == [(1, 7)]  # y' = 0 - tan(45) * 3
    assert lit_pixels(affine(frames, shear_y=-45.0)) == [(7, 7)]


def test_shear_draws_stay_in_their_ranges_and_vary_across_samples():
    shear_x, shear_y = draw_shear(2000, 20.0, 5.0, seeded())
    assert shear_x.abs().max() <= 20 and shear_x.abs().max() > 19
    assert shear_y.abs().max() <= 5 and shear_y.abs().max() > 4.9
    out = random_shear(lit(15, 15, 14, 7, B=6), 40.0, generator=seeded(1))
    assert_same_in_every_frame(out)
    assert len({tuple(lit_pixels(out, b=b)) for b in range(6)}) > 1


def test_affine_translation_and_identity_are_exact(device):
    frames = torch.randint(0, 4, (2, 2, 2, 6, 9), device=device).float()
    assert torch.equal(affine(frames), frames)
    assert torch.equal(affine(frames, translate_x=2.0, translate_y=-1.0), translate(frames, -1, 2))


def test_affine_matches_torchvision_nearest_where_torchvision_works():
    try:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F
    except (ImportError, RuntimeError) as error:  # absent, or built for another torch
        pytest.skip(f"torchvision is not usable here: {error}")
    g = seeded(0)
    nearest = InterpolationMode.NEAREST
    differing = total = 0
    for trial in range(40):
        frames = torch.randint(0, 5, (2, 1, 2, 33 + trial % 3, 40), generator=g).float()
        m = float(torch.rand(1, generator=g)) * 2 - 1
        ours, theirs = {
            0: (affine(frames, angle=30 * m), F.rotate(frames[:, 0], 30 * m, interpolation=nearest)),
            1: (affine(frames, shear_x=17 * m), F.affine(frames[:, 0], 0.0, [0, 0], 1.0, [17 * m, 0.0], nearest)),
            2: (affine(frames, shear_y=17 * m), F.affine(frames[:, 0], 0.0, [0, 0], 1.0, [0.0, 17 * m], nearest)),
            3: (affine(frames, translate_x=int(5 * m)), F.affine(frames[:, 0], 0.0, [int(5 * m), 0], 1.0, [0.0, 0.0],
                                                                 nearest)),
        }[trial % 4]
        differing += (ours[:, 0] != theirs).any(0).any(0).sum().item()
        total += frames.shape[-1] * frames.shape[-2]
    # torchvision samples through a float32 grid, so a centre that lands exactly between two
    # pixels may round the other way; anything beyond such ties would show as many pixels.
    assert differing <= 1e-4 * total


# --------------------------------------------------------------------------- cutout and random erasing

def test_erase_zeroes_exactly_the_box_in_every_frame(device):
    frames = torch.ones(3, 2, 2, 6, 8, device=device)
    out = erase(frames, torch.tensor([[1, 2, 3, 4], [0, 0, 0, 5]]))
    expected = torch.ones(6, 8, device=device)
    expected[1:4, 2:6] = 0
    assert torch.equal(out[:, 0], expected.expand(3, 2, 6, 8))
    assert torch.equal(out[:, 1], frames[:, 1])  # a box of height 0 erases nothing


def test_cutout_boxes_are_centred_squares_clipped_to_the_frame():
    boxes = draw_cutout_boxes(3000, 20, 30, 8, seeded())
    top, left, height, width = boxes.unbind(1)
    assert (top >= 0).all() and (top + height <= 20).all() and (left + width <= 30).all()
    assert (height <= 8).all() and (width <= 8).all() and ((height == 8) & (width == 8)).any()
    assert (height < 8).any()  # some hang over the border
    frames = torch.ones(2, 3000, 1, 20, 30)
    erased = (cutout(frames, 8, seeded()) == 0).sum((0, 2, 3, 4)) / 2
    assert torch.equal(erased, (height * width).float())


def test_random_erasing_boxes_follow_scale_and_ratio_and_fit_inside():
    boxes = draw_erasing_boxes(3000, 32, 32, scale=(0.02, 0.2), ratio=(1.0, 1.0), generator=seeded())
    top, left, height, width = boxes.unbind(1)
    assert torch.equal(height, width)
    area = (height * width).float() / (32 * 32)
    # h = round(sqrt(area)), so the erased fraction is within rounding of the scale range
    assert area.min() >= (math.sqrt(0.02 * 1024) - 0.5) ** 2 / 1024 and area.max() <= (math.sqrt(0.2 * 1024) + 0.5) ** 2 / 1024
    assert (top + height <= 32).all() and (left + width <= 32).all() and (top >= 0).all()
    some = draw_erasing_boxes(3000, 32, 32, p=0.25, generator=seeded())
    erased = (some[:, 2] > 0).float().mean().item()
    assert abs(erased - 0.25) < 0.03


def test_random_erasing_gives_up_when_no_box_fits():
    boxes = draw_erasing_boxes(50, 4, 4, scale=(0.95, 1.0), ratio=(1.0, 1.0), generator=seeded())
    assert (boxes[:, 2:] == 0).all()


# --------------------------------------------------------------------------- SNNAugmentWide

def wide_params(op_names, magnitudes, boxes=None):
    op = torch.tensor([OPS.index(name) for name in op_names])
    boxes = torch.zeros(len(op_names), 4, dtype=torch.int64) if boxes is None else torch.tensor(boxes)
    return WideParams(op=op, magnitude=torch.tensor(magnitudes, dtype=torch.float64), boxes=boxes)


def test_wide_applies_each_op_as_the_authors_do(device):
    frames = lit(11, 11, 5, 8, B=6, device=device)  # 3 right of the centre (5, 5)
    params = wide_params(
        ["identity", "translate_x", "translate_y", "rotate", "shear_x", "cutout"],
        [0.0, -2.67, 3.67, 90.0, 0.3, 0.0],
        [[0] * 4] * 5 + [[4, 7, 3, 3]],
    )
    out = SNNAugmentWide.apply(frames, params)
    assert lit_pixels(out, b=0) == [(5, 8)]
    assert lit_pixels(out, b=1) == [(5, 6)]  # int(-2.67) = -2: truncated toward zero
    assert lit_pixels(out, b=2) == [(8, 8)]  # int(3.67) = 3, downwards
    assert lit_pixels(out, b=3) == [(2, 5)]  # 90 degrees counter-clockwise
    assert lit_pixels(out, b=5) == []        # erased by its box
    sheared = affine(frames[:, 4:5], shear_x=math.degrees(0.3))  # 0.3 taken as radians: 17.19 degrees
    assert torch.equal(out[:, 4:5], sheared)
    row_below = lit(11, 11, 9, 5, device=device)
    assert lit_pixels(SNNAugmentWide.apply(row_below, wide_params(["shear_x"], [0.3]))) == [(9, 4)]  # -4 tan 17.19 = -1.24


def test_wide_draws_ops_uniformly_from_the_authors_magnitude_tables():
    wide = SNNAugmentWide()
    params = wide.draw(6000, 128, 128, seeded())
    counts = torch.bincount(params.op, minlength=6).float() / 6000
    assert ((counts - 1 / 6).abs() < 0.025).all(), counts
    for name, step, limit in (("rotate", 2.0, 30.0), ("translate_x", 1 / 3, 5.0), ("shear_x", 0.02, 0.3)):
        values = params.magnitude[params.op == OPS.index(name)]
        assert values.abs().max() == pytest.approx(limit)
        assert torch.allclose(values / step, torch.round(values / step), atol=1e-9), name
        assert len(torch.unique(values)) == 31
    assert (params.magnitude[params.op == OPS.index("identity")] == 0).all()
    boxes = params.boxes
    is_cutout = params.op == OPS.index("cutout")
    assert (boxes[~is_cutout] == 0).all()
    sides = boxes[is_cutout, 2]
    assert torch.equal(sides, boxes[is_cutout, 3])  # ratio (1, 1): squares
    assert sides.min() >= 3 and sides.max() <= 43  # sqrt(0.001 * 128^2) = 4.05, sqrt(0.11 * 128^2) = 42.5


def test_wide_on_a_batch_is_one_transform_per_sample():
    frames = lit(32, 32, 9, 20, B=24)
    out = SNNAugmentWide()(frames, seeded(5))
    assert_same_in_every_frame(out)
    assert len({tuple(lit_pixels(out, b=b)) for b in range(24)}) > 6


# --------------------------------------------------------------------------- the random ops together

@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_each_random_op_is_deterministic_given_a_generator_and_shared_across_frames(name, device):
    op = RANDOM_OPS[name]
    frames = torch.rand(1, 12, 1, 24, 24, device=device).expand(4, 12, 2, 24, 24).contiguous()
    first, again, other = op(frames, seeded(7)), op(frames, seeded(7)), op(frames, seeded(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert_same_in_every_frame(first)
    assert first.device == frames.device and first.dtype == frames.dtype


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_each_random_op_moves_bfloat16_frames_like_float32_ones(name):
    frames = torch.randint(0, 8, (3, 6, 2, 16, 16)).float()  # small counts: exact in bfloat16
    op = RANDOM_OPS[name]
    out = op(frames.bfloat16(), seeded(2))
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.float(), op(frames, seeded(2)))


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_each_random_op_names_a_wrong_shape(name):
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        RANDOM_OPS[name](torch.zeros(2, 2, 8, 8), seeded())


@pytest.mark.parametrize("call, message", [
    (lambda x: random_hflip(x, 1.5), "probability"),
    (lambda x: random_rotate(x, -1.0), "degrees"),
    (lambda x: random_rotate(x, float("nan")), "degrees"),
    (lambda x: random_shear(x, 90.0), "below 90"),
    (lambda x: affine(x, shear_x=90.0), "strictly between"),
    (lambda x: affine(x, angle=torch.zeros(3)), r"shape \[B\]"),
    (lambda x: translate(x, torch.zeros(2), 0), r"shape \[B\]"),
    (lambda x: random_translate(x, 1.5), "max_shift"),
    (lambda x: cutout(x, -2), "cutout size"),
    (lambda x: random_erasing(x, scale=(0.5, 0.1)), "scale"),
    (lambda x: random_erasing(x, ratio=(0.0, 1.0)), "ratio must be positive"),
    (lambda x: erase(x, torch.zeros(4, 3)), r"\[B, 4\]"),
    (lambda x: crop(x, 0, 0, 1, size=(0, 3)), "positive"),
    (lambda x: SNNAugmentWide(num_magnitude_bins=1), "num_magnitude_bins"),
    (lambda x: SNNAugmentWide.apply(x, wide_params(["identity"], [0.0])), "samples"),
])
def test_bad_parameters_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.zeros(2, 4, 2, 8, 8))


def test_translation_draw_is_whole_pixels_in_range():
    dy, dx = draw_translation(3000, 3, seeded())
    assert dy.dtype == torch.int64 and set(dy.tolist()) == set(range(-3, 4)) == set(dx.tolist())


# --------------------------------------------------------------------------- mixup and cutmix

def labelled_batch(B=4, T=2, H=8, W=10, seed=0):
    g = seeded(seed)
    return torch.rand(T, B, 2, H, W, generator=g), torch.randint(0, 5, (B,), generator=g)


def test_smooth_one_hot_puts_the_smoothing_mass_on_the_other_classes():
    targets = smooth_one_hot(torch.tensor([2, 0]), 5, 0.1)
    assert torch.allclose(targets[0], torch.tensor([0.02, 0.02, 0.92, 0.02, 0.02]))
    assert torch.allclose(targets.sum(1), torch.ones(2))


def test_mixup_blends_each_sample_with_the_flipped_batch(device):
    frames, labels = labelled_batch()
    frames, labels = frames.to(device), labels.to(device)
    mix = MixupCutmix(5, label_smoothing=0.1)
    out, targets = mix.apply(frames, labels, MixDraw(0.7))
    assert torch.allclose(out, 0.7 * frames + 0.3 * frames.flip(1))
    own = smooth_one_hot(labels, 5, 0.1)
    assert torch.allclose(targets, 0.7 * own + 0.3 * own[[3, 2, 1, 0]])
    assert torch.allclose(targets.sum(1), torch.ones(4, device=device))


def test_cutmix_pastes_the_box_from_the_partner_and_lambda_is_the_kept_area():
    frames, labels = labelled_batch(B=3, H=16, W=20)
    mix = MixupCutmix(5, mixup_alpha=0.0, cutmix_alpha=1.0)
    for seed in range(20):
        draw = mix.draw(16, 20, seeded(seed))
        top, bottom, left, right = draw.box
        assert 0 <= top <= bottom <= 16 and 0 <= left <= right <= 20
        assert draw.lam == pytest.approx(1 - (bottom - top) * (right - left) / (16 * 20))
        out, targets = mix.apply(frames, labels, draw)
        inside = torch.zeros(16, 20, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(out[..., inside], frames.flip(1)[..., inside])
        assert torch.equal(out[..., ~inside], frames[..., ~inside])
        assert torch.allclose(targets.sum(1), torch.ones(3))
        assert torch.allclose(targets[1], smooth_one_hot(labels, 5, 0.1)[1])  # the middle sample pairs with itself


def test_cutmix_lambda_without_correction_is_the_beta_draw():
    corrected = MixupCutmix(5, mixup_alpha=0.0, cutmix_alpha=1.0)
    raw = MixupCutmix(5, mixup_alpha=0.0, cutmix_alpha=1.0, correct_lam=False)
    a, b = corrected.draw(16, 20, seeded(4)), raw.draw(16, 20, seeded(4))
    assert a.box == b.box and a.lam != b.lam
    # the box side is int(H * sqrt(1 - lam)) of the raw draw (halved each side of the centre)
    assert (a.box[1] - a.box[0]) <= int(16 * math.sqrt(1 - b.lam))


def test_switch_prob_and_prob_choose_between_cutmix_mixup_and_nothing():
    both = MixupCutmix(5, prob=1.0, switch_prob=0.5)
    kinds = [both.draw(8, 8, seeded(s)).box is not None for s in range(300)]
    assert 100 < sum(kinds) < 200
    never = MixupCutmix(5, prob=0.0)
    frames, labels = labelled_batch()
    out, targets = never(frames, labels, seeded())
    assert out is frames and torch.allclose(targets, smooth_one_hot(labels, 5, 0.1))
    assert all(MixupCutmix(5, cutmix_alpha=0.0).draw(8, 8, seeded(s)).box is None for s in range(20))


def test_mixup_switches_off_from_off_epoch():
    mix = MixupCutmix(5, prob=1.0, off_epoch=75)
    assert mix.active(0) and mix.active(74) and not mix.active(75) and not mix.active(96)
    assert MixupCutmix(5).active(10_000)
    frames, labels = labelled_batch()
    mixed, _ = mix(frames, labels, seeded(), epoch=74)
    assert not torch.equal(mixed, frames)
    late, targets = mix(frames, labels, seeded(), epoch=75)
    assert late is frames and torch.allclose(targets, smooth_one_hot(labels, 5, 0.1))


def test_mixup_is_deterministic_given_a_generator_and_keeps_bfloat16():
    frames, labels = labelled_batch()
    mix = MixupCutmix(5)
    a, ta = mix(frames, labels, seeded(3))
    b, tb = mix(frames, labels, seeded(3))
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert len({MixupCutmix(5, cutmix_alpha=0.0).draw(8, 10, seeded(s)).lam for s in range(10)}) == 10
    out, targets = mix(frames.bfloat16(), labels, seeded(3))
    assert out.dtype == torch.bfloat16 and targets.dtype == torch.float32


@pytest.mark.parametrize("make, message", [
    (lambda: MixupCutmix(5, mixup_alpha=0.0, cutmix_alpha=0.0), "both are 0"),
    (lambda: MixupCutmix(5, prob=2.0), "prob"),
    (lambda: MixupCutmix(5, label_smoothing=1.0), "label_smoothing"),
    (lambda: MixupCutmix(0), "num_classes"),
    (lambda: MixupCutmix(5, off_epoch=-1), "off_epoch"),
    (lambda: EventMix(5, alpha=0.0), "alpha"),
])
def test_bad_mixing_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("mixer", [MixupCutmix(5), EventMix(5)], ids=["mixup_cutmix", "eventmix"])
def test_bad_mixing_input_is_named(mixer):
    frames, labels = labelled_batch()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        mixer(frames, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match=r"shape \[B\]"):
        mixer(frames, labels[:3])
    with pytest.raises(ValueError, match="class indices"):
        mixer(frames, labels.float())
    with pytest.raises(ValueError, match="floating-point"):
        mixer(frames.long(), labels)
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        mixer(frames[0], labels)


# --------------------------------------------------------------------------- EventMix

def test_eventmix_takes_the_box_from_the_partner_and_weights_labels_by_its_events(device):
    T, H, W = 4, 6, 6
    frames = torch.zeros(T, 2, 2, H, W, device=device)
    frames[:, 0] = 1.0                      # sample 0: 4 * 2 * 36 = 288 events, spread evenly
    frames[1:3, 1, 0, 0:2, 0:3] = 5.0       # sample 1: 2 * 6 pixels * 5 = 60 events, in one corner
    labels = torch.tensor([3, 1], device=device)
    # sample 0 takes frames 1..2, rows 0..1, columns 0..2 from sample 1: exactly its events
    boxes = torch.tensor([[1, 3, 0, 2, 0, 3], [0, 0, 0, 0, 0, 0]])
    mixed, targets, weight = EventMix(5).apply(frames, labels, boxes)
    inside = torch.zeros(T, 2, H, W, dtype=torch.bool, device=device)
    inside[1:3, :, 0:2, 0:3] = True
    assert torch.equal(mixed[:, 0][inside], frames[:, 1][inside])
    assert torch.equal(mixed[:, 0][~inside], frames[:, 0][~inside])
    assert torch.equal(mixed[:, 1], frames[:, 1])
    kept = 288 - 2 * 2 * 6  # sample 0's events outside the box
    assert weight[0].item() == pytest.approx(60 / (60 + kept))
    assert weight[1].item() == 0.0
    assert torch.allclose(targets[0], torch.tensor([0, 1, 0, 0, 0], device=device) * weight[0]
                          + torch.tensor([0, 0, 0, 1, 0], device=device) * (1 - weight[0]))
    assert torch.allclose(targets.sum(1), torch.ones(2, device=device))


def test_eventmix_weights_by_volume_when_the_mixed_sample_has_no_events():
    frames = torch.zeros(2, 2, 1, 4, 4)
    _, _, weight = EventMix(3).apply(frames, torch.tensor([0, 1]), torch.tensor([[0, 1, 0, 2, 0, 2]] * 2))
    assert torch.allclose(weight, torch.full((2,), 4 / 32))


def test_eventmix_boxes_stay_inside_and_are_empty_when_not_mixed():
    mix = EventMix(5, alpha=1.0, prob=0.5)
    boxes = mix.draw(10, 2000, 32, 32, seeded())
    for axis, size in enumerate((10, 32, 32)):
        lo, hi = boxes[:, 2 * axis], boxes[:, 2 * axis + 1]
        assert (lo >= 0).all() and (lo <= hi).all() and (hi <= size).all()
    volume = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2]) * (boxes[:, 5] - boxes[:, 4])
    assert 0.4 < (volume == 0).float().mean() < 0.6
    assert (volume > 0).any()


def test_eventmix_is_deterministic_and_refuses_negative_frames():
    frames, labels = labelled_batch(B=6, T=5)
    mix = EventMix(5, label_smoothing=0.1)
    a, ta = mix(frames, labels, seeded(1))
    b, tb = mix(frames, labels, seeded(1))
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not torch.equal(a, frames)
    assert torch.allclose(ta.sum(1), torch.ones(6))
    half, half_targets = mix(frames.bfloat16(), labels, seeded(1))
    assert half.dtype == torch.bfloat16 and torch.equal(half, a.bfloat16())
    assert torch.allclose(half_targets, ta, atol=1e-2)
    with pytest.raises(ValueError, match="negative"):
        mix(frames - 0.5, labels, seeded())
