"""get_model_complexity_info: ptflops' arguments and return values."""

import io

import pytest
import torch
from torch import nn

from flopmeter import get_model_complexity_info


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)  # 8*8*8 = 512 outputs * 27 = 13,824 MACs + 512 bias
        self.act = nn.ReLU()  # 512
        self.fc = nn.Linear(512, 10)  # 5,120 MACs + 10 bias

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


def test_numbers_and_strings():
    # ptflops convention: 13,824 + 512 + 512 + 5,120 + 10 = 19,978
    assert get_model_complexity_info(Net(), (3, 8, 8), as_strings=False, print_per_layer_stat=False) == (
        19_978,
        5_354,
    )
    macs, params = get_model_complexity_info(Net(), (3, 8, 8), print_per_layer_stat=False)
    assert (macs, params) == ("19.98 KMac", "5.35 k")
    macs, params = get_model_complexity_info(
        Net(), (3, 8, 8), print_per_layer_stat=False, flops_units="MMac", param_units="M", output_precision=4
    )
    assert (macs, params) == ("0.02 MMac", "0.0054 M")


def test_input_constructor_dict_and_batch_is_per_sample():
    def batch_of_four(res):
        return {"x": torch.randn(4, *res)}

    macs, _ = get_model_complexity_info(
        Net(), (3, 8, 8), as_strings=False, print_per_layer_stat=False, input_constructor=batch_of_four
    )
    assert macs == 19_978  # per sample, as ptflops divides by the batch


def test_ignore_modules_and_custom_hooks():
    macs, _ = get_model_complexity_info(
        Net(), (3, 8, 8), as_strings=False, print_per_layer_stat=False, ignore_modules=[nn.ReLU]
    )
    assert macs == 19_466  # 19,978 - 512

    def linear_hook(module, inputs, output):
        module.__flops__ += 1_000  # ptflops hooks add to __flops__

    model = Net()
    macs, _ = get_model_complexity_info(
        model,
        (3, 8, 8),
        as_strings=False,
        print_per_layer_stat=False,
        custom_modules_hooks={nn.Linear: linear_hook},
    )
    assert macs == 13_824 + 512 + 512 + 1_000
    assert not hasattr(model.fc, "__flops__")  # nothing written into the model


def test_printout_goes_to_ost_and_model_mode_is_kept():
    out = io.StringIO()
    model = Net().train()
    get_model_complexity_info(model, (3, 8, 8), ost=out, verbose=True)
    assert out.getvalue().startswith("Net(\n")
    assert "(conv): Conv2d(" in out.getvalue() and "% Params" in out.getvalue()
    assert model.training  # ptflops leaves it in eval mode; flopmeter does not


def test_errors_raise_instead_of_returning_none():
    with pytest.raises(TypeError, match="input_res must be a non-empty tuple"):
        get_model_complexity_info(Net(), [3, 8, 8])
    with pytest.raises(RuntimeError, match="module 'conv'"):
        get_model_complexity_info(Net(), (4, 8, 8), print_per_layer_stat=False)
