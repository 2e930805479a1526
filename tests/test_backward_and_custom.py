"""Backward counts against hand formulas, and user-given formulas."""

import torch
from torch import nn

import flopmeter
from flopmeter import Cost


class TestBackward:
    def test_linear_all_trainable_is_twice_the_forward_contraction(self):
        fc = nn.Linear(8, 4)
        x = torch.randn(2, 8, requires_grad=True)
        report = flopmeter.profile(fc, x, backward=True)
        assert report.forward.macs == 64  # 2*4*8
        # grad_input (2x4)@(4x8): 64 MACs; grad_weight (4x2)@(2x8): 64 MACs
        assert report.backward_cost.macs == 128
        # grad_input 16 dots of length 4: 16*7 = 112; grad_weight 32 dots of length 2: 32*3 = 96;
        # grad_bias: sum over the batch, 4*(2-1) = 4
        assert report.backward_cost.flops == 212

    def test_linear_frozen_weights_only_grad_input(self):
        fc = nn.Linear(8, 4).requires_grad_(False)
        report = flopmeter.profile(fc, torch.randn(2, 8, requires_grad=True), backward=True)
        assert report.backward_cost.macs == 64  # 1x the forward: grad_input only
        assert report.backward_cost.flops == 112
        assert all(not p.requires_grad for p in fc.parameters())  # restored

    def test_linear_input_without_grad_only_weight_grads(self):
        report = flopmeter.profile(nn.Linear(8, 4), torch.randn(2, 8), backward=True)
        assert report.backward_cost.macs == 64  # grad_weight only
        assert report.backward_cost.flops == 100  # 96 + bias 4

    def test_conv2d(self):
        conv = nn.Conv2d(3, 8, 3)
        x = torch.randn(2, 3, 8, 8, requires_grad=True)
        report = flopmeter.profile(conv, x, backward=True)
        assert report.forward.macs == 15_552  # 2*8*6*6 outputs * 27
        assert report.backward_cost.macs == 31_104  # grad_input + grad_weight, 2x
        frozen = flopmeter.profile(nn.Conv2d(3, 8, 3).requires_grad_(False), x, backward=True)
        assert frozen.backward_cost.macs == 15_552  # 1x

    def test_training_step_of_a_transformer_costs_about_three_forwards(self):
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        report = flopmeter.profile(layer, torch.randn(2, 16, 32, requires_grad=True), backward=True)
        # every contraction twice more (attention's D = rowsum(dO*O) is FLOPs, not MACs)
        assert report.total.macs == 3 * report.forward.macs
        assert report.forward.macs == 294_912  # 2*16*(32*96 + 32*32 + 32*64*2) + 2*4*2*16*16*8
        assert report.unsupported_ops() == {}
        assert (
            report.by_module()["linear1"].backward.macs == 2 * report.by_module()["linear1"].total.macs // 3
        )

    def test_frozen_module_shows_no_weight_gradient(self):
        model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
        model[2].requires_grad_(False)
        report = flopmeter.profile(model, torch.randn(2, 8), backward=True)
        # layer 2 frozen: only grad_input (2x4)@(4x8) = 64 MACs; layer 0 trainable, input
        # without grad: only grad_weight (8x2)@(2x8) = 128 MACs
        assert report.by_module()["2"].backward.macs == 64
        assert report.by_module()["0"].backward.macs == 128


class TestCustomFormulas:
    def test_custom_module_formula_replaces_its_ops(self):
        class Scan(nn.Module):
            def forward(self, x):
                return torch.cumsum(x, 1) * 2

        model = nn.Sequential(nn.Linear(4, 4), Scan())
        report = flopmeter.profile(
            model,
            torch.randn(1, 4),
            custom_formulas={Scan: lambda module, args, out: Cost(macs=10, flops=99)},
        )
        assert report.by_module()["1"].total.flops == 99
        assert report.flops == 32 + 99  # linear 4*8 + the user's number
        assert "custom:Scan" in report.by_operator()

    def test_register_formula_for_a_custom_op(self):
        @torch.library.custom_op("flopmeter_test::fused_gelu", mutates_args=())
        def fused_gelu(x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.gelu(x)

        @fused_gelu.register_fake
        def _(x):
            return torch.empty_like(x)

        class Uses(nn.Module):
            def forward(self, x):
                return fused_gelu(x)

        unknown = flopmeter.profile(Uses(), torch.randn(3, 4))
        assert "flopmeter_test.fused_gelu" in unknown.unsupported_ops()  # never a silent zero
        flopmeter.register_formula("flopmeter_test.fused_gelu", lambda event: 7 * event.outputs[0].numel)
        try:
            known = flopmeter.profile(Uses(), torch.randn(3, 4))
            assert known.flops == 84 and known.unsupported_ops() == {}  # 7 * 12
        finally:
            flopmeter.unregister_formula("flopmeter_test.fused_gelu")

    def test_user_formula_takes_precedence_over_builtin(self):
        report = flopmeter.profile(nn.ReLU(), torch.randn(4), custom_formulas={"aten.relu": lambda e: 100})
        assert report.flops == 100
