"""A Report built by hand (no torch run), so golden files never drift with torch."""

from flopmeter.cost import Cost
from flopmeter.report import ModuleStats, OperatorStats, Report, UnsupportedOp


def handmade_report() -> Report:
    # Net: conv (Conv2d 3->8, 3x3, pad 1, 1x3x8x8 input) -> relu -> fc (Linear 512->10)
    conv = Cost(
        macs=13_824,
        flops=27_648,
        ptflops_macs=14_336,
        bytes_read=1_824,
        bytes_written=2_048,
        weight_bytes=896,
    )  # 27*512 MACs; 2*27*512 FLOPs with bias
    relu = Cost(flops=512, ptflops_macs=512, bytes_read=2_048, bytes_written=2_048)
    fc = Cost(
        macs=5_120, flops=10_240, ptflops_macs=5_130, bytes_read=22_568, bytes_written=40, weight_bytes=20_520
    )
    modules = {
        "": ModuleStats(
            "",
            "Net",
            0,
            calls=1,
            own_params=0,
            params=5_354,
            trainable_params=5_354,
            total=conv + relu + fc,
            children=["conv", "act", "fc"],
        ),
        "conv": ModuleStats(
            "conv",
            "Conv2d",
            1,
            "3, 8, kernel_size=(3, 3), padding=(1, 1)",
            1,
            224,
            224,
            224,
            own=conv,
            total=conv,
        ),
        "act": ModuleStats("act", "ReLU", 1, "", 1, own=relu, total=relu),
        "fc": ModuleStats(
            "fc",
            "Linear",
            1,
            "in_features=512, out_features=10, bias=True",
            1,
            5_130,
            5_130,
            5_130,
            own=fc,
            total=fc,
        ),
    }
    operators = {
        "aten.convolution": OperatorStats("aten.convolution", "counted", 1, conv),
        "aten.relu": OperatorStats("aten.relu", "counted", 1, relu),
        "aten.addmm": OperatorStats("aten.addmm", "counted", 1, fc),
        "aten.view": OperatorStats("aten.view", "view", 1, Cost()),
    }
    unsupported = {"mylib.fused": UnsupportedOp("mylib.fused", 2, ["(1x512:float32)"], ["fc"])}
    return Report(
        model_name="Net",
        batch_size=1,
        inputs=[{"name": "arg0", "shape": [1, 3, 8, 8], "dtype": "float32", "device": "cpu"}],
        modules=modules,
        operators=operators,
        unsupported=unsupported,
        forward=conv + relu + fc,
        backward_cost=Cost(),
        params=5_354,
        trainable_params=5_354,
        buffers=0,
        param_bytes=21_416,
        buffer_bytes=0,
        training=False,
        did_backward=False,
        options={"causal": "full"},
        versions={"flopmeter": "test", "torch": "test"},
    )
