"""Spikformer+SEMM: parameter counts equal to STEP's code less its neurons' stored thresholds and surrogate
alphas (and, for ImageNet, the K/V batch norms it never calls), the router quirk as a pure permutation of the router's normalised logits, the experts' gating, and
the converter's warning for neurons STEP stored with other settings."""

import pytest
import torch

from spikeformers.models import count_parameters, create_model
from spikeformers.models.spikformer_semm import ExpertsMixtureAttention
from spikeformers.neurons import neuron_factory

# STEP's spikf_semm_cifar factory (cls/models/static/spikf_semm_cifar.py), counted with
# sum(p.numel() for p in model.parameters()) less its 130 neuron scalars (65 thresholds, 65 alphas).
# Its spikf_semm_imagenet factory (spikf_semm_imagenet.py) at imgnet.yaml's 8-512, less its 250 neuron scalars
# and the 9,728 weights and biases of the K and V batch norms it builds and never calls.
AUTHORS_PARAMETERS = {"spikformer_semm_cifar10": 7_739_372 - 130, "spikformer_semm_cifar100": 7_774_022 - 130,
                      "spikformer_semm_imagenet_8_512": 27_550_338 - 250 - 9_728}
TINY = dict(embed_dim=16, depth=1, expert_dim=8)


@pytest.mark.parametrize("name, params", sorted(AUTHORS_PARAMETERS.items()))
def test_parameter_counts_equal_steps_code_less_its_neuron_scalars(name, params):
    assert count_parameters(create_model(name)) == params


def attention(quirk: bool) -> ExpertsMixtureAttention:
    torch.manual_seed(0)
    return ExpertsMixtureAttention(16, neuron_factory("lif"), num_experts=4, expert_dim=8, official_quirks=quirk)


def test_router_quirk_reads_the_gates_from_the_normalised_logits_laid_out_expert_major():
    """STEP's [T*B, E, N] view reshaped to [T, B, N, E] without a transpose: token n's gate for expert e is the
    normalised logit at flat position n * E + e of the expert-major layout."""
    module = attention(quirk=True).train()
    x = torch.randn(2, 3, 8, 16)
    seen = []
    module.router_neuron.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    module(x)
    logits = module.router.bn(module.router.linear(x).reshape(-1, 4)).reshape(6, 8, 4)  # the same batch statistics
    expert_major = logits.transpose(1, 2).reshape(2, 3, 8, 4)
    assert torch.allclose(seen[0], expert_major)
    assert not torch.allclose(seen[0], logits.reshape(2, 3, 8, 4))


def test_a_token_that_no_expert_gates_gets_a_zero_mixture():
    module = attention(quirk=False).eval()
    module.router.bn.bias.data.fill_(-100.0)  # the router never fires
    x = torch.randn(2, 1, 8, 16)
    mixed = []
    module.proj.register_forward_pre_hook(lambda m, args: mixed.append(args[0]))
    module(x)
    assert torch.count_nonzero(mixed[0]) == 0


def test_converter_warns_about_neurons_stored_with_other_thresholds(tmp_path):
    model = create_model("spikformer_semm_cifar10", **TINY)
    assert model.official_warnings({"block.0.attn.k_lif.threshold": torch.tensor(1.0)}) == []
    warnings = model.official_warnings({"block.0.attn.k_lif.threshold": torch.tensor(0.5)})
    assert len(warnings) == 1 and "block.0.attn.k_lif.threshold" in warnings[0]


def test_mlp_works_on_the_token_grid_of_any_image_size():
    """STEP hard-codes an 8x8 grid (32x32 images); here the grid follows img_size."""
    model = create_model("spikformer_semm_cifar10", img_size=48, time_steps=2, **TINY)
    assert model.blocks[0].mlp.grid == (12, 12)
    assert model(torch.randn(2, 3, 48, 48)).shape == (2, 10)


def test_imagenet_mlp_width_follows_steps_thirds_rule_at_any_width_and_ignores_the_ratio():
    """STEP's ImageNet file sizes its MLP ``embed_dim // 3 * 16`` (2720 at 512), not ``embed_dim * mlp_ratio``."""
    assert create_model("spikformer_semm_imagenet_8_512").blocks[0].mlp.fc1.linear.out_features == 2720
    model = create_model("spikformer_semm_imagenet_8_512", embed_dim=32, depth=1, expert_dim=8, mlp_ratio=2.0,
                         img_size=32, num_classes=10)
    assert model.blocks[0].mlp.fc1.linear.out_features == 160


def test_imagenet_keys_and_values_fire_off_unbiased_linears_without_batch_norms():
    attn = create_model("spikformer_semm_imagenet_8_512", embed_dim=32, depth=1, expert_dim=8, img_size=32,
                        num_classes=10).blocks[0].attn
    assert isinstance(attn.k, torch.nn.Linear) and attn.k.bias is None
    assert isinstance(attn.v, torch.nn.Linear) and attn.v.bias is None
    assert attn.queries[0].linear.bias is None and attn.scale == 1.0


def test_an_unknown_mlp_width_rule_is_refused_by_name():
    with pytest.raises(ValueError, match="mlp_width must be one of ratio, thirds, not 'half'"):
        create_model("spikformer_semm_cifar10", mlp_width="half", **TINY)


def test_imagenet_blocks_keep_pytorchs_default_init_as_steps_1x1_convs_do():
    """STEP's _init_weights draws only nn.Linear from trunc_normal(std .02): its ImageNet blocks are 1x1 convs,
    uniform within 1/sqrt(fan_in); its CIFAR blocks are Linears (a 0.02 normal passes 1/sqrt(384) often)."""
    imagenet = create_model("spikformer_semm_imagenet_8_512", depth=1)
    assert imagenet.blocks[0].attn.k.weight.abs().max() <= 512 ** -0.5
    assert imagenet.head.fc.weight.std() < 0.021 and not imagenet.head.fc.bias.any()  # default: std 0.0255
    cifar = create_model("spikformer_semm_cifar10", depth=1)
    assert cifar.blocks[0].attn.k.linear.weight.abs().max() > 384 ** -0.5
