"""`--compile` / `--channels-last` (genmed.train.compiled): same numbers as eager, same
checkpoint keys, through the model, the engine and `genmed sample`."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from genmed.errors import UserError
from genmed.models import build_model
from genmed.train import train
from genmed.train.compiled import accelerate, networks

from .toys import Blobs, ToyAutoencoder, toy_config

TINY_UNET = dict(channels=(8, 16), attention_levels=(False, False), norm_num_groups=8,
                 sample_steps=2)


def tiny_diffusion():
    torch.manual_seed(0)
    return build_model("diffusion", size=16, **TINY_UNET).eval()


def compiled_graphs() -> int:
    """Graphs TorchDynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def test_compiled_and_channels_last_samples_equal_eager():
    eager, fast = tiny_diffusion(), tiny_diffusion()
    graphs = compiled_graphs()
    keys = list(fast.state_dict())
    accelerate(fast, compile=True, channels_last=True)
    assert list(fast.state_dict()) == keys  # checkpoints stay loadable either way
    conv = next(p for p in fast.parameters() if p.dim() == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        a = eager.sample(4, generator=torch.Generator().manual_seed(1))
        b = fast.sample(4, generator=torch.Generator().manual_seed(1))
    assert compiled_graphs() > graphs  # the compiled path ran
    assert a.abs().mean() > 0.05  # not a vacuous comparison of two blank images
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_engine_trains_the_same_weights_compiled(tmp_path):
    runs, graphs = {}, compiled_graphs()
    for name, compiled in (("eager", False), ("compiled", True)):
        cfg = toy_config(str(tmp_path / name), steps=6).replace(compile=compiled)
        torch.manual_seed(0)
        train(cfg, model=ToyAutoencoder(), dataset=Blobs(32))
        runs[name] = load_file(tmp_path / name / "checkpoints/step-00000006.model.safetensors")
    assert compiled_graphs() > graphs
    assert runs["eager"].keys() == runs["compiled"].keys()
    start = ToyAutoencoder().state_dict()
    for key, value in runs["eager"].items():
        torch.testing.assert_close(runs["compiled"][key], value, rtol=1e-4, atol=1e-5)
        assert not torch.equal(value, start[key])


def test_networks_are_the_children_with_weights():
    model = build_model("gan", size=16)
    assert {id(n) for n in networks(model)} == {id(model.generator), id(model.discriminator)}


def test_channels_last_refuses_a_vector_model():
    with pytest.raises(UserError, match="no convolutions"):
        accelerate(build_model("diffusion", size=2, data_kind="vector"), channels_last=True)


def test_a_channels_last_run_resumes_to_the_uninterrupted_weights(tmp_path):
    from genmed.train import resume

    def run(name: str, steps: int):
        cfg = toy_config(str(tmp_path / name), steps=steps).replace(  # constant LR: the
            channels_last=True, schedule="constant", warmup=0)  # resumed schedule is the same
        torch.manual_seed(0)
        train(cfg, model=ToyAutoencoder(), dataset=Blobs(32))

    run("whole", 6)
    run("parts", 4)  # optimiser state saved from channels-last parameters, then restored
    resume(tmp_path / "parts", steps=6, model=ToyAutoencoder(), dataset=Blobs(32))
    name = "checkpoints/step-00000006.model.safetensors"
    a, b = load_file(tmp_path / "whole" / name), load_file(tmp_path / "parts" / name)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
