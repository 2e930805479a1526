"""Contraction formulas against hand-computed numbers (the seed article's convention)."""

from flopmeter.formulas import contraction


class TestConv:
    def test_seed_conv_without_bias(self):
        # Conv2d(3, 64, 3, padding=1) on 1x3x32x32: C_i*K^2 = 27, outputs 64*32*32 = 65,536
        cost = contraction.conv((1, 3, 32, 32), (64, 3, 3, 3), (1, 64, 32, 32), bias=False)
        assert cost.flops == 3_473_408  # (2*3*3*3-1)*32*32*64 = 53*65,536
        assert cost.macs == 1_769_472  # 3*3*3*32*32*64 = 27*65,536

    def test_seed_conv_with_bias(self):
        cost = contraction.conv((1, 3, 32, 32), (64, 3, 3, 3), (1, 64, 32, 32), bias=True)
        assert cost.flops == 3_538_944  # 2*3*3*3*32*32*64 = 54*65,536
        assert cost.macs == 1_769_472
        assert cost.ptflops_macs == 1_835_008  # 1,769,472 MACs + 65,536 bias adds

    def test_batch_multiplies(self):
        one = contraction.conv((1, 3, 32, 32), (64, 3, 3, 3), (1, 64, 32, 32), bias=True)
        four = contraction.conv((4, 3, 32, 32), (64, 3, 3, 3), (4, 64, 32, 32), bias=True)
        assert four.flops == 4 * one.flops == 14_155_776  # 4*3,538,944
        assert four.macs == 4 * one.macs == 7_077_888  # 4*1,769,472

    def test_grouped_depthwise(self):
        # depthwise 3x3 on 32 channels, 8x8 output: each output sums 1*9 products
        cost = contraction.conv((1, 32, 8, 8), (32, 1, 3, 3), (1, 32, 8, 8), bias=False, groups=32)
        assert cost.macs == 18_432  # 9*8*8*32
        assert cost.flops == 34_816  # (2*9-1)*8*8*32 = 17*2,048

    def test_conv1d_and_conv3d(self):
        c1 = contraction.conv((2, 4, 10), (6, 4, 3), (2, 6, 8), bias=True)
        assert c1.flops == 2_304  # 2*4*3 * (2*6*8) = 24*96
        c3 = contraction.conv((1, 2, 4, 4, 4), (3, 2, 3, 3, 3), (1, 3, 2, 2, 2), bias=False)
        assert c3.macs == 1_296  # 2*27 * 3*8 = 54*24
        assert c3.flops == 2_568  # (2*54-1)*24 = 107*24

    def test_transposed(self):
        # ConvTranspose2d(3, 4, 3) on 1x3x5x5 -> 1x4x7x7: each of 75 inputs times 4*9 weights
        cost = contraction.conv((1, 3, 5, 5), (3, 4, 3, 3), (1, 4, 7, 7), bias=True, transposed=True)
        assert cost.macs == 2_700  # 75*36
        assert cost.flops == 5_400  # 2*2,700 - 196 outputs + 196 bias adds

    def test_transposed_outputs_no_product_reaches(self):
        # ConvTranspose2d(4, 2, 3, stride=2, output_padding=1) on 1x4x5x5 -> 1x2x12x12: input
        # i and tap j write row 2i + j, rows 0..10; row 11 (and column 11) get nothing
        covered = contraction.transposed_conv_covered((1, 2, 12, 12), (5, 5), (3, 3), (2, 2), (0, 0), (1, 1))
        assert covered == 242  # 2 channels * 11*11 reached (288 outputs - 46 on row/col 11)
        cost = contraction.conv(
            (1, 4, 5, 5), (4, 2, 3, 3), (1, 2, 12, 12), bias=False, transposed=True, covered=covered
        )
        assert cost.macs == 1_800  # 100 inputs * 2*9 weights
        assert cost.flops == 3_358  # 2*1,800 - 242 (the old "every output" convention: 3,312)
        biased = contraction.conv(
            (1, 4, 5, 5), (4, 2, 3, 3), (1, 2, 12, 12), bias=True, transposed=True, covered=covered
        )
        assert biased.flops == 3_600  # + 242 bias adds; the 46 others are the bias alone
        # stride 3 > kernel 2: rows 3i + j, j in {0, 1}, of 14 -> 10 reached per dim
        assert (
            contraction.transposed_conv_covered((1, 1, 14, 14), (5, 5), (2, 2), (3, 3), (0, 0), (1, 1)) == 100
        )
        # dilation 2, kernel 2, stride 1, padding 1 on 4: rows i - 1 + 2j -> -1..4 of 0..4, all 5
        assert contraction.transposed_conv_covered((1, 1, 5), (4,), (2,), (1,), (1,), (2,)) == 5


class TestMatmul:
    def test_seed_linear(self):
        # Linear(4096, 1000): 1000 dot products of length 4096
        assert contraction.dot_products(1000, 4096).flops == 8_191_000  # (2*4096-1)*1000
        assert contraction.dot_products(1000, 4096, bias=True).flops == 8_192_000  # 2*4096*1000
        assert contraction.dot_products(1000, 4096).macs == 4_096_000  # 4096*1000

    def test_batched_matmul(self):
        cost = contraction.matmul(4, 16, 8, 16)
        assert cost.macs == 8_192  # 4*16*16*8
        assert cost.flops == 15_360  # 4*16*16*(2*8-1) = 1024*15

    def test_trilinear_as_nn_bilinear_forward(self):
        # B 2, I1 3, I2 4, O 5: x1 (2,1,3,1), A (1,5,3,4), x2 (2,1,1,4), summed over I1, I2
        cost = contraction.trilinear([(2, 1, 3, 1), (1, 5, 3, 4), (2, 1, 1, 4)], [2, 3])
        assert cost.macs == 120  # 2*5*3*4
        assert cost.flops == 254  # outer x1*x2 2*3*4 = 24 + 2*5 dots of 12: 10*(2*12-1) = 230

    def test_trilinear_as_nn_bilinear_weight_gradient(self):
        # dA: x1 (2,1,3,1), g (2,5,1,1), x2 (2,1,1,4) summed over the batch
        cost = contraction.trilinear([(2, 1, 3, 1), (2, 5, 1, 1), (2, 1, 1, 4)], [0])
        assert cost.macs == 120  # 5*3*4 outputs x 2 terms
        assert (
            cost.flops == 204
        )  # cheapest pair x1*x2 2*3*4 = 24 (x1*g 30, g*x2 40) + 60 dots of 2: 60*3 = 180
