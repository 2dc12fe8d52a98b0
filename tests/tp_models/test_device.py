"""Device names resolve the same everywhere; a GPU that is not there is one clear error."""

from __future__ import annotations

import pytest
import torch

from tp_models.core.device import DEFAULT_DEVICE, DEVICE_CHOICES, DeviceError, resolve_device

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_choices_and_default() -> None:
    assert DEVICE_CHOICES == ("auto", "cpu", "cuda")
    assert DEFAULT_DEVICE in DEVICE_CHOICES


@pytest.mark.parametrize("name", ["cpu", " CPU ", torch.device("cpu")])
def test_cpu_resolves_to_the_cpu(name) -> None:
    assert resolve_device(name) == torch.device("cpu")


def test_auto_picks_cuda_exactly_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("name", ["gpu", "mps", "cuda:x", "cuda:-1", "", "cpu:0"])
def test_unknown_names_are_refused_naming_the_parameter(name: str) -> None:
    with pytest.raises(DeviceError, match=r"set the device parameter to one of auto, cpu, cuda"):
        resolve_device(name)


def test_device_error_is_a_value_error() -> None:
    assert issubclass(DeviceError, ValueError)


@without_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_cuda_is_one_sentence(name: str) -> None:
    with pytest.raises(DeviceError) as raised:
        resolve_device(name)
    message = str(raised.value)
    assert "sees none" in message and "device parameter to cpu or auto" in message
    assert message.count(". ") == 0 and "\n" not in message


@needs_cuda
def test_cuda_names_resolve_to_an_indexed_gpu() -> None:
    assert resolve_device("cuda") == torch.device("cuda", torch.cuda.current_device())
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    missing = torch.cuda.device_count()
    with pytest.raises(DeviceError, match=f"names GPU {missing}"):
        resolve_device(f"cuda:{missing}")
