"""Spiking Wavelet Transformer: parameter counts equal to the authors' code, the ternary neuron's
dynamics, the Haar matrix, FATM's two variants, and the token grids the Haar transform cannot take."""

import pytest
import torch

from spikeformers.models import count_parameters, create_model
from spikeformers.models.spiking_wavelet import FrequencyAwareTokenMixer, TernaryIF, haar_matrix
from spikeformers.neurons import LIF, PLIF, neuron_factory

# The authors' SWformer (bic-L/Spiking-Wavelet-Transformer) as their train.py files build it,
# counted with sum(p.numel() for p in model.parameters()).
AUTHORS_PARAMETERS = {"swt_dvs": 2_157_834, "swt_cifar10": 7_479_226, "swt_cifar100": 7_513_876,
                      "swt_imagenet_8_512": 27_600_424, "swt_imagenet_6_512": 21_806_632}


@pytest.mark.parametrize("name, params", sorted(AUTHORS_PARAMETERS.items()))
def test_parameter_counts_equal_the_authors_code(name, params):
    with torch.device("meta"):  # shapes only: the ImageNet models take seconds to initialise
        model = create_model(name)
    assert count_parameters(model) == params


def test_haar_threshold_reaches_every_ternary_neuron_and_only_them():
    model = create_model("swt_imagenet_8_512", embed_dim=16, depth=1, img_size=64, haar_threshold=0.5)
    ternary = [m for m in model.modules() if isinstance(m, TernaryIF)]
    assert len(ternary) == 3 and all(m.v_threshold == 0.5 and m.neg_v_threshold == 0.5 for m in ternary)
    assert all(m.v_threshold == 1.0 for m in model.modules() if isinstance(m, LIF))


def test_ternary_neuron_fires_plus_and_minus_one_and_resets_to_zero():
    neuron = TernaryIF(v_threshold=1.0, neg_v_threshold=0.5)
    x = torch.tensor([0.6, 0.6, -0.4, -0.2, -0.5005, 0.0]).reshape(6, 1)
    # v: 0.6, 1.2 -> +1 (reset 0), -0.4, -0.6 -> -1 (reset), -0.5005 (above -0.501: silent), -0.5005
    assert neuron(x).flatten().tolist() == [0.0, 1.0, 0.0, -1.0, 0.0, 0.0]


def test_ternary_neuron_passes_the_surrogate_gradient_on_both_sides():
    neuron = TernaryIF()
    x = torch.tensor([[0.9], [-1.4]], requires_grad=True)  # v = 0.9 (near +1), then -0.5 (near -0.501)
    neuron(x).sum().backward()
    assert (x.grad != 0).all()


def test_haar_matrix_is_orthonormal_and_rejects_other_sides():
    for n in (1, 2, 8, 16):
        H = haar_matrix(n)
        assert torch.allclose(H @ H.T, torch.eye(n, dtype=torch.float64))
    with pytest.raises(ValueError, match="power-of-2"):
        haar_matrix(6)


@pytest.mark.parametrize("style", ["event", "cifar"])
def test_fatm_variants_differ_only_in_erosion_and_what_the_convolutions_read(style):
    torch.manual_seed(0)
    mixer = FrequencyAwareTokenMixer(8, 4, neuron_factory("lif"), blocks=2, style=style).eval()
    x = torch.randn(2, 2, 8, 4, 4) * 3
    spikes = mixer.x_neuron(x)
    seen = []
    mixer.conv1.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    mixer(x)
    if style == "cifar":  # the convolutions read the input spikes themselves
        assert torch.equal(seen[0], spikes.reshape(8, 4, 4, 4))
    else:
        assert not torch.equal(seen[0], spikes.reshape(8, 4, 4, 4))


def test_the_neuron_option_reaches_every_neuron_but_the_wavelet_transforms_own():
    model = create_model("swt_dvs", embed_dim=16, depth=1, neuron="plif")
    assert all(isinstance(n, PLIF) for n in model.modules() if isinstance(n, LIF))
    assert sum(isinstance(n, TernaryIF) for n in model.modules()) == 3


def test_token_grids_the_haar_transform_cannot_take_are_refused():
    with pytest.raises(ValueError, match="power-of-2 side"):
        create_model("swt_dvs", embed_dim=16, depth=1, img_size=96)  # a 6x6 grid
