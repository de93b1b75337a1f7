// 2-d max-pooling of [N, C, H, W] CPU tensors: PyTorch's exact results, one byte of state.
//
// PyTorch's max_pool2d keeps, for backward, its input and an int64 index per output;
// on a stem's spike maps that is 1.5 times the input's size again, and its NCHW kernel
// is a scalar loop. This one keeps only the winner's place in its window (kh * k + kw,
// one byte) and vectorises along the output row: the input row is split by column
// phase (column mod stride), so each window column becomes a contiguous run.
//
// Same results, bit for bit: the window is scanned in PyTorch's order (rows, then
// columns) and a value wins when it is greater than the best so far or NaN, starting
// from -inf at the window's first in-bounds place; backward adds each output's
// gradient into its winner's place in output order, so overlapping windows sum in
// PyTorch's order too.

#include "cpp_support.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

struct Geometry {
  int64_t H, W, OH, OW, kh, kw, sh, sw, ph, pw;
};

// floor division for a possibly negative numerator and a positive divisor
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

template <typename scalar_t>
void forward_plane(const Geometry& g, const scalar_t* in, scalar_t* out, uint8_t* arg,
                   std::vector<at::opmath_type<scalar_t>>& phases, int64_t phase_len, int64_t offset,
                   std::vector<at::opmath_type<scalar_t>>& best, std::vector<int32_t>& code) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t neg_inf = -std::numeric_limits<acc_t>::infinity();
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t ih0 = oh * g.sh - g.ph;
    const int64_t first_row = std::max<int64_t>(0, -ih0);  // the window's first in-bounds row
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      best[ow] = neg_inf;
      code[ow] = int32_t(first_row * g.kw + std::max<int64_t>(0, g.pw - ow * g.sw));
    }
    for (int64_t r = first_row; r < g.kh; ++r) {
      const int64_t ih = ih0 + r;
      if (ih >= g.H) break;
      // Split the input row by column phase: phases[p][j + offset] = row[p + j * sw], -inf outside.
      const scalar_t* row = in + ih * g.W;
      for (int64_t p = 0; p < g.sw; ++p) {
        acc_t* dst = phases.data() + p * phase_len;
        for (int64_t j = 0; j < phase_len; ++j) {
          const int64_t iw = p + (j - offset) * g.sw;
          dst[j] = (iw >= 0 && iw < g.W) ? acc_t(row[iw]) : neg_inf;
        }
      }
      for (int64_t c = 0; c < g.kw; ++c) {
        const int64_t q = c - g.pw;  // input column = ow * sw + q
        const int64_t p = q - floor_div(q, g.sw) * g.sw;
        const acc_t* src = phases.data() + p * phase_len + floor_div(q, g.sw) + offset;
        const int32_t here = int32_t(r * g.kw + c);
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const acc_t v = src[ow];
          const bool wins = (v > best[ow]) | (v != v);  // -inf padding never wins
          best[ow] = wins ? v : best[ow];
          code[ow] = wins ? here : code[ow];
        }
      }
    }
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      out[oh * g.OW + ow] = scalar_t(best[ow]);
      arg[oh * g.OW + ow] = uint8_t(code[ow]);
    }
  }
}

template <typename scalar_t>
void backward_plane(const Geometry& g, const scalar_t* grad_out, const uint8_t* arg, scalar_t* grad_in) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const int64_t o = oh * g.OW + ow;
      const int64_t place = arg[o];
      const int64_t ih = oh * g.sh - g.ph + place / g.kw, iw = ow * g.sw - g.pw + place % g.kw;
      scalar_t& target = grad_in[ih * g.W + iw];
      target = scalar_t(acc_t(target) + acc_t(grad_out[o]));  // PyTorch's += in scalar_t
    }
  }
}

Geometry geometry(int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  TORCH_CHECK(kh >= 1 && kw >= 1 && kh * kw <= 256, "window ", kh, "x", kw, " does not fit a one-byte place");
  TORCH_CHECK(sh >= 1 && sw >= 1 && 0 <= ph && 2 * ph <= kh && 0 <= pw && 2 * pw <= kw, "invalid stride or padding");
  const int64_t OH = (H + 2 * ph - kh) / sh + 1, OW = (W + 2 * pw - kw) / sw + 1;
  TORCH_CHECK(OH >= 1 && OW >= 1, "input ", H, "x", W, " is smaller than the window");
  return {H, W, OH, OW, kh, kw, sh, sw, ph, pw};
}

}  // namespace

// x is [planes, H, W] (planes = N * C, contiguous); writes out and arg, [planes, OH, OW] each:
// the output and the place of each output's winner in its window.
extern "C" const char* max_pool_forward(int dtype, const void* x, void* out, uint8_t* arg, int64_t planes,
                                        int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                        int64_t ph, int64_t pw, int threads) {
  SF_ENTRY(threads)
  const Geometry g = geometry(H, W, kh, kw, sh, sw, ph, pw);
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    scalar_t* op = static_cast<scalar_t*>(out);
    uint8_t* ap = arg;
    // Phase rows hold columns floor((0 - pw) / sw) .. OW + (kw - 1 - pw) / sw, shifted by offset.
    const int64_t offset = -floor_div(-g.pw, g.sw);
    const int64_t phase_len = offset + g.OW + floor_div(g.kw - 1 - g.pw, g.sw) + 1;
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> phases(g.sw * phase_len), best(g.OW);
      std::vector<int32_t> code(g.OW);
      for (int64_t plane = begin; plane < end; ++plane)
        forward_plane<scalar_t>(g, xp + plane * g.H * g.W, op + plane * g.OH * g.OW, ap + plane * g.OH * g.OW,
                                phases, phase_len, offset, best, code);
    });
  });
  SF_EXIT
}

// Adds each output's gradient into its winner's place of grad_in [planes, H, W], which the
// caller zeroed.
extern "C" const char* max_pool_backward(int dtype, const void* grad_out, const uint8_t* arg, void* grad_in,
                                         int64_t planes, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                                         int64_t sw, int64_t ph, int64_t pw, int threads) {
  SF_ENTRY(threads)
  const Geometry g = geometry(H, W, kh, kw, sh, sw, ph, pw);
  SF_DISPATCH_FLOATING(dtype, [&] {
    const scalar_t* gp = static_cast<const scalar_t*>(grad_out);
    scalar_t* ip = static_cast<scalar_t*>(grad_in);
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane)
        backward_plane<scalar_t>(g, gp + plane * g.OH * g.OW, arg + plane * g.OH * g.OW, ip + plane * H * W);
    });
  });
  SF_EXIT
}
