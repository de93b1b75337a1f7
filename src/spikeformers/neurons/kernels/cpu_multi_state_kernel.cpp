// Fused multi-step neurons with more state than one membrane, for the CPU: Izhikevich (its recovery),
// CLIF (its memory), STEP's GLIF (the previous spike, per-step coefficients) and HD-LIF (four expert
// membranes and their gated mixture). A library of its own, built on first use of these neurons, so the
// common ones' build does not wait for it.
//
// The plan of cpu_kernel.cpp: x is [T, N], threads split the neurons, forward writes only the spikes,
// backward recomputes the states of a cache-sized chunk of neurons from x and runs the adjoint recurrence
// over it. Compiled with -ffp-contract=off: the forward's operations round as the neurons' PyTorch loops'.

#include "neuron_kernel.h"

#include <type_traits>
#include <vector>

// ---------------------------------------------------------------------------------------------------
// Neurons with a second state beside the membrane: Izhikevich's recovery w, CLIF's complementary
// memory m. Same plan as above: forward writes only the spikes; backward recomputes the chunk's
// pre-spike membranes (and CLIF's memories) from x, then runs the adjoint recurrence with two carries.
// The forward's operations are the neurons' PyTorch loops' (spikeformers/neurons/zoo.py), in order.
//
// Izhikevich (SpikingJelly 2.0 IzhikevichNode), from v = v_init, w = w_rest:
//   h = v + ((x + (a0 * (v - v_rest)) * (v - v_c)) - w) / tau
//   w = (w + ((a * (h - v_rest)) - w) / tau_w) + b * s
//   v = reset(h, s)
// CLIF, STEP's (from v = v_init, m = 0) and SpikingJelly's (from v = 0, m = 0):
//   STEP: a = (v * (1 - 1/tau) [+ v_reset / tau]) + (decay_input ? x / tau : x)
//   SJ:   a = (v - v / tau) + x
//   m = m * sigmoid(a / tau) + s
//   STEP: v = reset(a, s) - s * sigmoid(m);  SJ: v = a - s * (threshold + sigmoid(m))
// ---------------------------------------------------------------------------------------------------
namespace {

enum PairKind { kIzhikevich = 0, kClifStep = 1, kClifSJ = 2 };
// STEP's CLIF with decay_input, a kind of its own inside this file: a select on a run-time switch kept the
// loop from vectorising.
constexpr int kClifStepDecay = 3;

constexpr int kPairConstants = 16;

// The spec's two-state constants (NeuronSpec.two_state_constants, in that order).
template <typename acc_t>
struct Pair {
  acc_t tau, threshold, v_reset, v_init, alpha;
  bool soft;
  acc_t reset_grad;  // 1, or 0 with detach_reset: the spike's path through the membrane's reset
  acc_t carry;       // 1, or 0 with detach_mem: the gradient through v[t-1] and the second state
  // Izhikevich: a0, v_rest, v_c, w_rest, tau_w, a, b. CLIF (STEP): 1 - 1/tau, v_reset / tau, whether that
  // term is added (v_reset not 0), decay_input.
  acc_t p[8];
};

template <typename acc_t>
Pair<acc_t> pair_settings(int64_t kind, const double* c, int64_t n) {
  TORCH_CHECK(kind >= kIzhikevich && kind <= kClifSJ, "unknown two-state neuron kind ", kind);
  TORCH_CHECK(n == kPairConstants, "expected ", kPairConstants, " two-state constants, got ", n);
  Pair<acc_t> s{};
  s.tau = acc_t(c[0]); s.threshold = acc_t(c[1]); s.v_reset = acc_t(c[2]); s.soft = c[3] != 0.0;
  s.v_init = acc_t(c[4]); s.alpha = acc_t(c[5]); s.reset_grad = acc_t(c[6]); s.carry = acc_t(c[7]);
  for (int i = 0; i < 8; ++i) s.p[i] = acc_t(c[8 + i]);
  return s;
}

// CLIF's sigmoid (and HD-LIF's surrogate), inlined: a call would keep the loops around it from vectorising.
// In float32 the reciprocal 1 / (1 + e^-z) is three Newton steps from a bit-level first guess (error below
// 1e-7, about an ulp): a division costs more than the rest of CLIF's step together. float64 divides.
template <typename acc_t>
[[gnu::always_inline]] inline acc_t sigmoid(acc_t z) {
  return acc_t(1) / (acc_t(1) + surrogate_exp(-z));
}
template <>
[[gnu::always_inline]] inline float sigmoid<float>(float z) {
  const float d = 1.0f + surrogate_exp(-z);  // in [1, 2e38]: surrogate_exp clamps its argument
  int32_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  bits = 0x7EF311C7 - bits;  // 1/d to within 12%, for d up to 1e38
  float r;
  std::memcpy(&r, &bits, sizeof(r));
  r = r * (2.0f - d * r);  // each step squares the relative error: 12% -> 1.4% -> 2e-4 -> 4e-8
  r = r * (2.0f - d * r);
  r = r * (2.0f - d * r);
  return d < 1e38f ? r : 0.0f;  // beyond, 1/d < 1e-38: as good as 0
}

// The membrane after the reset, without CLIF's extra depth: soft h - threshold, hard v_reset.
template <typename acc_t>
inline acc_t pair_reset(const Pair<acc_t>& s, acc_t h, bool fired) {
  return fired ? (s.soft ? h - s.threshold : s.v_reset) : h;
}

// Neurons [start, start + len) over all T, from rest. Writes the spikes (forward: SPIKES) or else the chunk's
// pre-spike membranes h[t] into hbuf ([T, len]) and CLIF's memory m[t], gate sigmoid(h[t] / tau) and reset
// depth sigmoid(m[t]) into mbuf ([3, T, len]), for backward. The
// switches are template parameters: a branch inside the loop would keep it from vectorising.
template <int KIND, bool SPIKES, typename scalar_t, typename acc_t>
void pair_forward_chunk(const Pair<acc_t>& s, const scalar_t* __restrict__ x, scalar_t* __restrict__ spikes,
                        acc_t* __restrict__ hbuf, acc_t* __restrict__ mbuf, int64_t T, int64_t N, int64_t start,
                        int64_t len, acc_t* __restrict__ v, acc_t* __restrict__ u) {
  // The settings in locals: read through the reference inside the loop, they might alias its stores.
  const acc_t tau = s.tau, threshold = s.threshold, v_init = s.v_init;
  const acc_t after_fire = s.soft ? acc_t(0) : s.v_reset, fire_keep = s.soft ? acc_t(1) : acc_t(0);
  const acc_t fire_sub = s.soft ? threshold : acc_t(0);
  const acc_t a0 = s.p[0], v_rest = s.p[1], v_c = s.p[2], w_rest = s.p[3], tau_w = s.p[4], a = s.p[5], b = s.p[6];
  // STEP's CLIF: v_reset / tau is added only when v_reset is not 0, but adding 0 is exact (up to a zero's sign)
  const acc_t leak = s.p[0], reset_term = s.p[1];
  for (int64_t i = 0; i < len; ++i) {
    v[i] = v_init;
    u[i] = KIND == kIzhikevich ? w_rest : acc_t(0);
  }
  for (int64_t t = 0; t < T; ++t) {
    const int64_t base = t * N + start;
    for (int64_t i = 0; i < len; ++i) {
      const acc_t vv = v[i], uu = u[i], xv = load<scalar_t, acc_t>(x, base + i);
      acc_t h;
      if constexpr (KIND == kIzhikevich) {
        h = vv + ((xv + (a0 * (vv - v_rest)) * (vv - v_c)) - uu) / tau;
      } else if constexpr (KIND == kClifStep) {
        h = (vv * leak + reset_term) + xv;
      } else if constexpr (KIND == kClifStepDecay) {
        h = (vv * leak + reset_term) + xv / tau;
      } else {
        h = (vv - vv / tau) + xv;
      }
      const bool fired = h >= threshold;
      // the reset: soft h - threshold (h * 1 - threshold), hard v_reset (h * 0 + v_reset), both exact
      const acc_t reset = (h * fire_keep - fire_sub) + after_fire;
      if constexpr (KIND == kIzhikevich) {
        u[i] = (uu + ((a * (h - v_rest)) - uu) / tau_w) + (fired ? b : acc_t(0));
        v[i] = fired ? reset : h;
      } else {
        const acc_t gate = sigmoid(h / tau);
        const acc_t m = uu * gate + (fired ? acc_t(1) : acc_t(0));
        const acc_t depth = sigmoid(m);
        u[i] = m;
        if constexpr (KIND != kClifSJ)
          v[i] = fired ? reset - depth : h;
        else
          v[i] = fired ? h - (threshold + depth) : h;
        if constexpr (!SPIKES) {
          mbuf[t * len + i] = m;
          mbuf[(T + t) * len + i] = gate;
          mbuf[(2 * T + t) * len + i] = depth;
        }
      }
      if constexpr (SPIKES)
        store<scalar_t, acc_t>(spikes, base + i, fired ? acc_t(1) : acc_t(0));
      else
        hbuf[t * len + i] = h;
    }
  }
}

// The adjoint recurrence of one chunk, from t = T - 1 down, with the carries gv = dL/dv[t] and
// gu = dL/dw[t] (Izhikevich) or dL/dm[t] (CLIF) from the steps after t.
template <int KIND, int SURROGATE, typename scalar_t, typename acc_t>
void pair_backward_chunk(const Pair<acc_t>& s, const scalar_t* __restrict__ grad_spikes,
                         const scalar_t* __restrict__ x, scalar_t* __restrict__ grad_x, int64_t T, int64_t N,
                         int64_t start, int64_t len, acc_t* __restrict__ hbuf, acc_t* __restrict__ mbuf,
                         acc_t* __restrict__ v, acc_t* __restrict__ u, acc_t* __restrict__ gv,
                         acc_t* __restrict__ gu) {
  pair_forward_chunk<KIND, false, scalar_t, acc_t>(s, x, nullptr, hbuf, mbuf, T, N, start, len, v, u);
  for (int64_t i = 0; i < len; ++i) gv[i] = gu[i] = acc_t(0);
  const acc_t one = acc_t(1);
  // The settings in locals, as in the forward.
  const acc_t tau = s.tau, threshold = s.threshold, v_reset = s.v_reset, v_init = s.v_init, alpha = s.alpha;
  const acc_t reset_grad = s.reset_grad, carry = s.carry, soft = s.soft ? one : acc_t(0);
  const acc_t a0 = s.p[0], v_rest = s.p[1], v_c = s.p[2], tau_w = s.p[4], a = s.p[5], b = s.p[6];
  constexpr bool kStep = KIND == kClifStep || KIND == kClifStepDecay;
  const acc_t dx = KIND == kClifStepDecay ? one / tau : one;  // dh/dx
  const acc_t dh_dv = kStep ? s.p[0] : one - one / tau;     // CLIF's dh[t]/dv[t-1]
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t base = t * N + start;
    const acc_t* __restrict__ ht = hbuf + t * len;
    const acc_t* __restrict__ hprev = t > 0 ? ht - len : ht;  // at t = 0 unread: v[-1] is v_init
    const acc_t* __restrict__ mt = KIND == kIzhikevich ? ht : mbuf + t * len;
    const acc_t* __restrict__ mprev = t > 0 ? mt - len : mt;  // at t = 0 unread: m[-1] is 0
    // t = 0 (no step before: v[-1] is v_init, m[-1] 0) in a loop of its own, so neither has a branch
    auto adjoint_step = [&](auto has_prev_c) {
      constexpr bool HAS_PREV = decltype(has_prev_c)::value;
      for (int64_t i = 0; i < len; ++i) {
        const acc_t h = ht[i], g = load<scalar_t, acc_t>(grad_spikes, base + i);
        const acc_t spike = h >= threshold ? one : acc_t(0);
        const acc_t sg = surrogate<SURROGATE, acc_t>(h - threshold, alpha);
        // dv[t]/dh[t] with the spike held (soft 1, hard 1 - s), and dv[t]/ds[t] through the reset
        const acc_t keep = one - (one - soft) * spike;
        const acc_t dv_ds_reset = soft * -threshold + (one - soft) * (v_reset - h);
        acc_t gh, gv_prev, gu_prev;
        if constexpr (KIND == kIzhikevich) {
          const acc_t gs = g + gu[i] * b + reset_grad * gv[i] * dv_ds_reset;
          gh = gs * sg + gv[i] * keep + gu[i] * (a / tau_w);
          acc_t v_prev = v_init;
          if constexpr (HAS_PREV) {
            const acc_t hp = hprev[i];
            v_prev = hp >= threshold ? (hp * soft - soft * threshold) + (one - soft) * v_reset : hp;
          }
          gv_prev = gh * (one + (a0 * ((v_prev - v_rest) + (v_prev - v_c))) / tau);
          gu_prev = -gh / tau + gu[i] * (one - one / tau_w);
          store<scalar_t, acc_t>(grad_x, base + i, gh / tau);
        } else {
          const acc_t m = mt[i], m_prev = HAS_PREV ? mprev[i] : acc_t(0);
          const acc_t gate = mt[T * len + i], depth = mt[2 * T * len + i];  // kept by the recompute
          // dL/dm[t], through the steps after t and this step's reset depth s * sigmoid(m)
          const acc_t gm = gu[i] - gv[i] * spike * depth * (one - depth);
          const acc_t dv_ds = kStep ? dv_ds_reset - depth : -(threshold + depth);
          const acc_t gs = g + gm + gv[i] * dv_ds;
          gh = gs * sg + gv[i] * (kStep ? keep : one) + gm * m_prev * (gate * (one - gate)) / tau;
          gv_prev = gh * dh_dv;
          gu_prev = gm * gate;
          store<scalar_t, acc_t>(grad_x, base + i, gh * dx);
        }
        gv[i] = gv_prev * carry;
        gu[i] = gu_prev * carry;
      }
    };
    if (t > 0)
      adjoint_step(std::true_type{});
    else
      adjoint_step(std::false_type{});
  }
}

}  // namespace

// Spikes [T, N] of a two-state neuron (kind: PairKind), its constants the spec's two-state constants.
extern "C" const char* pair_forward(int dtype, const void* x, void* spikes, int64_t T, int64_t N, int64_t kind,
                                    const double* constants, int64_t n_constants, int threads) {
  SF_ENTRY(threads)
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Pair<acc_t> s = pair_settings<acc_t>(kind, constants, n_constants);
    const int64_t own_kind = kind == kClifStep && s.p[3] != acc_t(0) ? kClifStepDecay : kind;
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    scalar_t* sp = static_cast<scalar_t*>(spikes);
    advise_huge_pages(sp, T * N * int64_t(sizeof(scalar_t)));
    const int64_t C = 4096;
    at::parallel_for(0, (N + C - 1) / C, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> v(C), u(C);
      for (int64_t c = begin; c < end; ++c) {
        const int64_t start = c * C, len = std::min(C, N - start);
        auto run = [&](auto kind_c) {
          pair_forward_chunk<decltype(kind_c)::value, true, scalar_t, acc_t>(s, xp, sp, nullptr, nullptr, T, N, start,
                                                                            len, v.data(), u.data());
        };
        switch (own_kind) {
          case kIzhikevich: run(std::integral_constant<int, kIzhikevich>{}); break;
          case kClifStep: run(std::integral_constant<int, kClifStep>{}); break;
          case kClifStepDecay: run(std::integral_constant<int, kClifStepDecay>{}); break;
          default: run(std::integral_constant<int, kClifSJ>{});
        }
      }
    });
  });
  SF_EXIT
}

// grad_x [T, N] of a two-state neuron from dL/dspikes; recomputes the states from x.
extern "C" const char* pair_backward(int dtype, const void* grad_spikes, const void* x, void* grad_x, int64_t T,
                                     int64_t N, int64_t kind, const double* constants, int64_t n_constants,
                                     int64_t surrogate_kind, int threads) {
  SF_ENTRY(threads)
  TORCH_CHECK(surrogate_kind >= kSigmoid && surrogate_kind <= kGate,
              "the two-state kernels compute built-in surrogates only, got code ", surrogate_kind);
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Pair<acc_t> s = pair_settings<acc_t>(kind, constants, n_constants);
    const int64_t own_kind = kind == kClifStep && s.p[3] != acc_t(0) ? kClifStepDecay : kind;
    const scalar_t* gp = static_cast<const scalar_t*>(grad_spikes);
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    scalar_t* gxp = static_cast<scalar_t*>(grad_x);
    advise_huge_pages(gxp, T * N * int64_t(sizeof(scalar_t)));
    const int64_t C = chunk_size(T, 4 * int64_t(sizeof(acc_t)));  // h, and CLIF's m, gate, depth: [T, C] each
    at::parallel_for(0, (N + C - 1) / C, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> hbuf(T * C), mbuf(kind == kIzhikevich ? 0 : 3 * T * C), v(C), u(C), gv(C), gu(C);
      for (int64_t c = begin; c < end; ++c) {
        const int64_t start = c * C, len = std::min(C, N - start);
        auto run = [&](auto kind_c, auto surrogate_c) {
          pair_backward_chunk<decltype(kind_c)::value, decltype(surrogate_c)::value, scalar_t, acc_t>(
              s, gp, xp, gxp, T, N, start, len, hbuf.data(), mbuf.data(), v.data(), u.data(), gv.data(), gu.data());
        };
        auto by_surrogate = [&](auto kind_c) {
          switch (surrogate_kind) {
            case kSigmoid: run(kind_c, std::integral_constant<int, kSigmoid>{}); break;
            case kAtan: run(kind_c, std::integral_constant<int, kAtan>{}); break;
            case kQGate: run(kind_c, std::integral_constant<int, kQGate>{}); break;
            default: run(kind_c, std::integral_constant<int, kGate>{});
          }
        };
        switch (own_kind) {
          case kIzhikevich: by_surrogate(std::integral_constant<int, kIzhikevich>{}); break;
          case kClifStep: by_surrogate(std::integral_constant<int, kClifStep>{}); break;
          case kClifStepDecay: by_surrogate(std::integral_constant<int, kClifStepDecay>{}); break;
          default: by_surrogate(std::integral_constant<int, kClifSJ>{});
        }
      }
    });
  });
  SF_EXIT
}

// ---------------------------------------------------------------------------------------------------
// STEP's GLIF (GLIFTorch): per-step coefficients, computed by PyTorch from the learned parameters and
// gates, drive one membrane u and the previous step's spike o, from u = o = 0:
//   u = (((A[t] * u) * (1 - G * o)) - B[t]) + (x * c[t]) - C[t] * o
//   o = u - vth[t] > 0
// (A = 1 - alpha (1 - tau), B = (1 - alpha) leak, C = (1 - gamma) reVth, c = 1 - beta (1 - conduct),
// G = gamma.) coeffs is [6, T] in that order (A, B, C, c, vth, G), G repeated per step. Backward
// returns dL/dx and dL/dcoeffs (float64 sums over the neurons); PyTorch's autograd takes them on to the
// parameters. The spike o carries a gradient into the next step (STEP does not detach it); detach_mem
// stops the one through u only, as STEP's u.detach() does.
// ---------------------------------------------------------------------------------------------------
namespace {

constexpr int kGlifCoefficients = 6;

template <typename acc_t>
struct GlifStep {
  acc_t A, B, C, c, vth, G;
};

template <typename acc_t>
GlifStep<acc_t> glif_step(const double* coeffs, int64_t T, int64_t t) {
  return {acc_t(coeffs[t]), acc_t(coeffs[T + t]), acc_t(coeffs[2 * T + t]), acc_t(coeffs[3 * T + t]),
          acc_t(coeffs[4 * T + t]), acc_t(coeffs[5 * T + t])};
}

// Spikes (SPIKES) or the chunk's membranes u[t] into ubuf ([T, len]); o is the previous step's spike.
template <bool SPIKES, typename scalar_t, typename acc_t>
void glif_forward_chunk(const double* coeffs, const scalar_t* __restrict__ x, scalar_t* __restrict__ spikes,
                        acc_t* __restrict__ ubuf, int64_t T, int64_t N, int64_t start, int64_t len,
                        acc_t* __restrict__ u, acc_t* __restrict__ o) {
  for (int64_t i = 0; i < len; ++i) u[i] = o[i] = acc_t(0);
  for (int64_t t = 0; t < T; ++t) {
    const GlifStep<acc_t> k = glif_step<acc_t>(coeffs, T, t);
    const int64_t base = t * N + start;
    for (int64_t i = 0; i < len; ++i) {
      const acc_t current = load<scalar_t, acc_t>(x, base + i) * k.c;
      const acc_t un = (((k.A * u[i]) * (acc_t(1) - k.G * o[i])) - k.B) + current - k.C * o[i];
      const acc_t spike = un - k.vth > acc_t(0) ? acc_t(1) : acc_t(0);
      u[i] = un;
      o[i] = spike;
      if constexpr (SPIKES)
        store<scalar_t, acc_t>(spikes, base + i, spike);
      else
        ubuf[t * len + i] = un;
    }
  }
}

// One step of GLIF's adjoint over a chunk: dL/dx[t], the carries to step t-1, and each neuron's terms of the
// six dL/dcoeffs[., t] (the caller sums them). Not inlined, so that its separate, unaliased arrays let the
// compiler vectorise it (inlined, it could not tell them apart).
template <int SURROGATE, typename scalar_t, typename acc_t>
[[gnu::noinline]] void glif_adjoint_step(
    const GlifStep<acc_t> k, const acc_t vth_prev, const acc_t has_prev, const acc_t alpha, const acc_t carry_u,
    const int64_t len, const acc_t* __restrict__ ut, const acc_t* __restrict__ uprev,
    const scalar_t* __restrict__ grad_spikes, const scalar_t* __restrict__ x, scalar_t* __restrict__ grad_x,
    acc_t* __restrict__ gu_next, acc_t* __restrict__ go_next, double* __restrict__ tA, double* __restrict__ tB,
    double* __restrict__ tC, double* __restrict__ tc, double* __restrict__ tvth, double* __restrict__ tG) {
  const acc_t one = acc_t(1);
  for (int64_t i = 0; i < len; ++i) {
    const acc_t u = ut[i], g = load<scalar_t, acc_t>(grad_spikes, i);
    const acc_t d = u - k.vth;
    const acc_t sg = surrogate<SURROGATE, acc_t>(d, alpha);
    const acc_t go = g + go_next[i];        // dL/do[t]
    const acc_t gu = go * sg + gu_next[i];  // dL/du[t]
    const acc_t u_prev = uprev[i] * has_prev;  // u[-1] = o[-1] = 0
    const acc_t o_prev = (uprev[i] - vth_prev > acc_t(0) ? one : acc_t(0)) * has_prev;
    const acc_t kept = one - k.G * o_prev;
    store<scalar_t, acc_t>(grad_x, i, gu * k.c);
    tA[i] = double(gu * (u_prev * kept));
    tB[i] = -double(gu);
    tC[i] = -double(gu * o_prev);
    tc[i] = double(gu * load<scalar_t, acc_t>(x, i));
    tvth[i] = -double(go * sg);
    tG[i] = -double(gu * ((k.A * u_prev) * o_prev));
    gu_next[i] = gu * (k.A * kept) * carry_u;         // to u[t-1]
    go_next[i] = gu * (-(k.A * u_prev) * k.G - k.C);  // to o[t-1]
  }
}

// The sum of n doubles in a fixed order (so results do not depend on threads): eight running sums over
// interleaved elements, then added up. One running sum would wait on each addition in turn.
inline double ordered_sum(const double* __restrict__ values, int64_t n) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lanes[j] += values[i + j];
  for (; i < n; ++i) lanes[i % 8] += values[i];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

template <int SURROGATE, typename scalar_t, typename acc_t>
void glif_backward_chunk(const double* coeffs, const scalar_t* __restrict__ grad_spikes,
                         const scalar_t* __restrict__ x, scalar_t* __restrict__ grad_x, int64_t T, int64_t N,
                         int64_t start, int64_t len, acc_t alpha, acc_t carry_u, acc_t* __restrict__ ubuf,
                         acc_t* __restrict__ gu_next, acc_t* __restrict__ go_next, double* __restrict__ terms,
                         double* __restrict__ grad_coeffs) {
  glif_forward_chunk<false, scalar_t, acc_t>(coeffs, x, nullptr, ubuf, T, N, start, len, gu_next, go_next);
  for (int64_t i = 0; i < len; ++i) gu_next[i] = go_next[i] = acc_t(0);
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t base = t * N + start;
    const acc_t* ut = ubuf + t * len;
    glif_adjoint_step<SURROGATE, scalar_t, acc_t>(
        glif_step<acc_t>(coeffs, T, t), t > 0 ? acc_t(coeffs[4 * T + t - 1]) : acc_t(0), t > 0 ? acc_t(1) : acc_t(0),
        alpha, carry_u, len, ut, t > 0 ? ut - len : ut, grad_spikes + base, x + base, grad_x + base, gu_next, go_next,
        terms, terms + len, terms + 2 * len, terms + 3 * len, terms + 4 * len, terms + 5 * len);
    for (int j = 0; j < kGlifCoefficients; ++j) grad_coeffs[j * T + t] += ordered_sum(terms + j * len, len);
  }
}

}  // namespace

extern "C" const char* glif_forward(int dtype, const void* x, void* spikes, int64_t T, int64_t N, const double* coeffs,
                                    int threads) {
  SF_ENTRY(threads)
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    scalar_t* sp = static_cast<scalar_t*>(spikes);
    advise_huge_pages(sp, T * N * int64_t(sizeof(scalar_t)));
    const int64_t C = 4096;
    at::parallel_for(0, (N + C - 1) / C, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> u(C), o(C);
      for (int64_t c = begin; c < end; ++c) {
        const int64_t start = c * C, len = std::min(C, N - start);
        glif_forward_chunk<true, scalar_t, acc_t>(coeffs, xp, sp, nullptr, T, N, start, len, u.data(), o.data());
      }
    });
  });
  SF_EXIT
}

// grad_x [T, N] and grad_coeffs [6, T] (float64, summed over the neurons in a fixed order).
extern "C" const char* glif_backward(int dtype, const void* grad_spikes, const void* x, void* grad_x,
                                     double* grad_coeffs, int64_t T, int64_t N, const double* coeffs,
                                     int64_t surrogate_kind, double alpha, int detach_mem, int threads) {
  SF_ENTRY(threads)
  TORCH_CHECK(surrogate_kind >= kSigmoid && surrogate_kind <= kGate,
              "the GLIF kernel computes built-in surrogates only, got code ", surrogate_kind);
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = static_cast<const scalar_t*>(grad_spikes);
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    scalar_t* gxp = static_cast<scalar_t*>(grad_x);
    advise_huge_pages(gxp, T * N * int64_t(sizeof(scalar_t)));
    const int64_t C = chunk_size(T, int64_t(sizeof(acc_t)));
    const int64_t chunks = (N + C - 1) / C;
    std::vector<double> partial(chunks * kGlifCoefficients * T, 0.0);
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> ubuf(T * C), gu(C), go(C);
      std::vector<double> terms(kGlifCoefficients * C);
      for (int64_t c = begin; c < end; ++c) {
        const int64_t start = c * C, len = std::min(C, N - start);
        double* out = partial.data() + c * kGlifCoefficients * T;
        auto run = [&](auto surrogate_c) {
          glif_backward_chunk<decltype(surrogate_c)::value, scalar_t, acc_t>(
              coeffs, gp, xp, gxp, T, N, start, len, acc_t(alpha), detach_mem ? acc_t(0) : acc_t(1), ubuf.data(),
              gu.data(), go.data(), terms.data(), out);
        };
        switch (surrogate_kind) {
          case kSigmoid: run(std::integral_constant<int, kSigmoid>{}); break;
          case kAtan: run(std::integral_constant<int, kAtan>{}); break;
          case kQGate: run(std::integral_constant<int, kQGate>{}); break;
          default: run(std::integral_constant<int, kGate>{});
        }
      }
    });
    // the chunks' partial sums added in chunk order: the result does not depend on the threads' schedule
    for (int64_t i = 0; i < kGlifCoefficients * T; ++i) grad_coeffs[i] = 0.0;
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t i = 0; i < kGlifCoefficients * T; ++i) grad_coeffs[i] += partial[c * kGlifCoefficients * T + i];
  });
  SF_EXIT
}

// ---------------------------------------------------------------------------------------------------
// STEP's HD-LIF: four expert membranes (IF, LIF, PLIF, EIF) integrate the same input, each reset to 0
// (EIF: to -0.1) where it reaches v_threshold, the reset detached; a zero membrane counts as v_threshold;
// a gate [B, 4, N] (PyTorch's softmax) mixes them, and the spike is mixture >= v_th_MoE, with the
// sigmoid surrogate of slope k_MoE. x is [T, B, C, N]; threads split the batch (each sample's gate
// gradient sums over its channels and steps). Backward recomputes each row's membranes.
//   IF:   h = m + x                     LIF: h = m + (x - m) / tau
//   PLIF: h = m + (x - m) * k           EIF: h = m + ((x - m) + exp(m - 0.8)) / tau
// ---------------------------------------------------------------------------------------------------
namespace {

constexpr int kExperts = 4;

template <typename acc_t>
struct HDLIF {
  acc_t threshold, tau, k, k_moe, v_th_moe, carry;  // carry: 1, or 0 with detach_mem
};

// One step of the four membranes over a row: the pre-reset membranes into h0..h3, the states updated.
// Not inlined, so that its separate, unaliased arrays let the compiler vectorise it.
template <typename scalar_t, typename acc_t>
[[gnu::noinline]] void hdlif_membrane_step(const acc_t threshold, const acc_t tau, const acc_t k, const int64_t N,
                                           const scalar_t* __restrict__ x, acc_t* __restrict__ m_if,
                                           acc_t* __restrict__ m_lif, acc_t* __restrict__ m_plif,
                                           acc_t* __restrict__ m_eif, acc_t* __restrict__ h0, acc_t* __restrict__ h1,
                                           acc_t* __restrict__ h2, acc_t* __restrict__ h3) {
  for (int64_t n = 0; n < N; ++n) {
    const acc_t xv = load<scalar_t, acc_t>(x, n);
    const acc_t h_if = m_if[n] + xv;
    const acc_t h_lif = m_lif[n] + (xv - m_lif[n]) / tau;
    const acc_t h_plif = m_plif[n] + (xv - m_plif[n]) * k;
    const acc_t h_eif = m_eif[n] + ((xv - m_eif[n]) + surrogate_exp(m_eif[n] - acc_t(0.8))) / tau;
    h0[n] = h_if;
    h1[n] = h_lif;
    h2[n] = h_plif;
    h3[n] = h_eif;
    m_if[n] = h_if >= threshold ? acc_t(0) : h_if;
    m_lif[n] = h_lif >= threshold ? acc_t(0) : h_lif;
    m_plif[n] = h_plif >= threshold ? acc_t(0) : h_plif;
    m_eif[n] = h_eif >= threshold ? acc_t(-0.1) : h_eif;
  }
}

// The four pre-reset membranes of one row (b, c) at every step, into h [T, 4, N], from rest.
template <typename scalar_t, typename acc_t>
void hdlif_membranes(const HDLIF<acc_t>& s, const scalar_t* x, int64_t T, int64_t row_stride, int64_t N, acc_t* h,
                     acc_t* m) {
  for (int64_t i = 0; i < kExperts * N; ++i) m[i] = acc_t(0);
  for (int64_t t = 0; t < T; ++t) {
    acc_t* ht = h + t * kExperts * N;
    hdlif_membrane_step<scalar_t, acc_t>(s.threshold, s.tau, s.k, N, x + t * row_stride, m, m + N, m + 2 * N,
                                         m + 3 * N, ht, ht + N, ht + 2 * N, ht + 3 * N);
  }
}

// An expert's membrane after its reset, as the mixture sees it (a zero counts as the threshold).
template <typename acc_t>
inline acc_t hdlif_after(acc_t h, acc_t threshold, acc_t level) {
  return h >= threshold ? level : h;
}

template <typename acc_t>
inline acc_t hdlif_seen(acc_t m, acc_t threshold) {
  return m == acc_t(0) ? threshold : m;
}

template <typename acc_t>
inline acc_t hdlif_mixture(const acc_t* __restrict__ ht, const acc_t* __restrict__ gate, int64_t N, int64_t n,
                           acc_t threshold) {
  const acc_t a0 = hdlif_seen(hdlif_after(ht[n], threshold, acc_t(0)), threshold);
  const acc_t a1 = hdlif_seen(hdlif_after(ht[N + n], threshold, acc_t(0)), threshold);
  const acc_t a2 = hdlif_seen(hdlif_after(ht[2 * N + n], threshold, acc_t(0)), threshold);
  const acc_t a3 = hdlif_seen(hdlif_after(ht[3 * N + n], threshold, acc_t(-0.1)), threshold);
  return ((gate[n] * a0 + gate[N + n] * a1) + gate[2 * N + n] * a2) + gate[3 * N + n] * a3;
}

// dL/dmixture of one row at one step (the surrogate of slope k_MoE), with the row's x in the compute type and
// gx zeroed for the experts to add into.
template <typename scalar_t, typename acc_t>
[[gnu::noinline]] void hdlif_mixture_grad(const acc_t threshold, const acc_t k_moe, const acc_t v_th_moe,
                                          const int64_t N, const acc_t* __restrict__ ht, const acc_t* __restrict__ g,
                                          const scalar_t* __restrict__ grad_spikes, const scalar_t* __restrict__ x,
                                          acc_t* __restrict__ dmix, acc_t* __restrict__ xrow,
                                          acc_t* __restrict__ gx) {
  const acc_t one = acc_t(1);
  for (int64_t n = 0; n < N; ++n) {
    const acc_t sig = sigmoid(k_moe * (hdlif_mixture(ht, g, N, n, threshold) - v_th_moe));
    dmix[n] = load<scalar_t, acc_t>(grad_spikes, n) * (k_moe * sig * (one - sig));
    xrow[n] = load<scalar_t, acc_t>(x, n);
    gx[n] = acc_t(0);
  }
}

// The spikes of one row at one step, from its pre-reset membranes h0..h3 and the sample's gate g0..g3.
template <typename scalar_t, typename acc_t>
[[gnu::noinline]] void hdlif_fire_step(const acc_t threshold, const acc_t v_th_moe, const int64_t N,
                                       const acc_t* __restrict__ h0, const acc_t* __restrict__ h1,
                                       const acc_t* __restrict__ h2, const acc_t* __restrict__ h3,
                                       const acc_t* __restrict__ g0, const acc_t* __restrict__ g1,
                                       const acc_t* __restrict__ g2, const acc_t* __restrict__ g3,
                                       scalar_t* __restrict__ out) {
  for (int64_t n = 0; n < N; ++n) {
    const acc_t mix = ((g0[n] * hdlif_seen(hdlif_after(h0[n], threshold, acc_t(0)), threshold) +
                        g1[n] * hdlif_seen(hdlif_after(h1[n], threshold, acc_t(0)), threshold)) +
                       g2[n] * hdlif_seen(hdlif_after(h2[n], threshold, acc_t(0)), threshold)) +
                      g3[n] * hdlif_seen(hdlif_after(h3[n], threshold, acc_t(-0.1)), threshold);
    store<scalar_t, acc_t>(out, n, mix >= v_th_moe ? acc_t(1) : acc_t(0));
  }
}

// One expert's adjoint over a row at one step: adds its share of dL/dx into gx, its term of dL/dgate into
// gg, and carries dL/dh to step t-1. LEVEL_EIF: EIF (reset to -0.1, exponential charge), else a linear one
// with dh/dm[t-1] = slope and dh/dx = dx. K_TERMS (PLIF): adds its dL/dk terms into k_terms.
template <bool EIF, bool K_TERMS, typename acc_t>
[[gnu::noinline]] void hdlif_expert_adjoint(const acc_t threshold, const acc_t tau, const acc_t slope,
                                            const acc_t dx, const acc_t carry_switch, const acc_t has_prev,
                                            const int64_t N, const acc_t* __restrict__ dmix,
                                            const acc_t* __restrict__ gate, const acc_t* __restrict__ h,
                                            const acc_t* __restrict__ hprev, const acc_t* __restrict__ x,
                                            acc_t* __restrict__ carry, acc_t* __restrict__ gx,
                                            double* __restrict__ gg, double* __restrict__ k_terms) {
  const acc_t one = acc_t(1), level = EIF ? acc_t(-0.1) : acc_t(0);
  for (int64_t n = 0; n < N; ++n) {
    const bool fired = h[n] >= threshold;
    const acc_t after = fired ? level : h[n];
    gg[n] += double(dmix[n] * hdlif_seen(after, threshold));
    // dL/dh: through the mixture where the membrane is not zero, and from step t+1; the reset is detached
    const acc_t dh = fired ? acc_t(0) : (after == acc_t(0) ? acc_t(0) : dmix[n] * gate[n]) + carry[n];
    const acc_t m_prev = has_prev * hdlif_after(hprev[n], threshold, level);
    gx[n] += dh * dx;
    if constexpr (K_TERMS) k_terms[n] += double(dh * (x[n] - m_prev));
    const acc_t d_slope = EIF ? one + (surrogate_exp(m_prev - acc_t(0.8)) - one) / tau : slope;
    carry[n] = dh * d_slope * carry_switch;
  }
}

template <typename acc_t>
HDLIF<acc_t> hdlif_settings(const double* c) {
  return {acc_t(c[0]), acc_t(c[1]), acc_t(c[2]), acc_t(c[3]), acc_t(c[4]), acc_t(c[5])};
}

}  // namespace

// Spikes [T, B, C, N]; gate [B, 4, N] in the compute type; constants: v_threshold, tau, PLIF's k, k_MoE,
// v_th_MoE, carry.
extern "C" const char* hdlif_forward(int dtype, const void* x, const void* gate, void* spikes, int64_t T, int64_t B,
                                     int64_t C, int64_t N, const double* constants, int threads) {
  SF_ENTRY(threads)
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const HDLIF<acc_t> s = hdlif_settings<acc_t>(constants);
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    const acc_t* gp = static_cast<const acc_t*>(gate);
    scalar_t* sp = static_cast<scalar_t*>(spikes);
    const int64_t row_stride = B * C * N;  // one step
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> h(T * kExperts * N), m(kExperts * N);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / C;
        hdlif_membranes<scalar_t, acc_t>(s, xp + row * N, T, row_stride, N, h.data(), m.data());
        const acc_t* g = gp + b * kExperts * N;
        for (int64_t t = 0; t < T; ++t) {
          const acc_t* ht = h.data() + t * kExperts * N;
          hdlif_fire_step<scalar_t, acc_t>(s.threshold, s.v_th_moe, N, ht, ht + N, ht + 2 * N, ht + 3 * N, g, g + N,
                                           g + 2 * N, g + 3 * N, sp + t * row_stride + row * N);
        }
      }
    });
  });
  SF_EXIT
}

// grad_x [T, B, C, N], grad_gate [B, 4, N] (float64) and dL/dk (float64, PLIF's leak): sums in a fixed order.
extern "C" const char* hdlif_backward(int dtype, const void* grad_spikes, const void* x, const void* gate,
                                      void* grad_x, double* grad_gate, double* grad_k, int64_t T, int64_t B,
                                      int64_t C, int64_t N, const double* constants, int threads) {
  SF_ENTRY(threads)
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const HDLIF<acc_t> s = hdlif_settings<acc_t>(constants);
    const scalar_t* gsp = static_cast<const scalar_t*>(grad_spikes);
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    const acc_t* gp = static_cast<const acc_t*>(gate);
    scalar_t* gxp = static_cast<scalar_t*>(grad_x);
    const int64_t row_stride = B * C * N;
    std::vector<double> k_per_sample(B, 0.0);
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> h(T * kExperts * N), m(kExperts * N), carry(kExperts * N), dmix(N), gx(N), xrow(N);
      std::vector<double> k_terms(N);
      const acc_t one = acc_t(1), threshold = s.threshold, tau = s.tau, k = s.k, k_moe = s.k_moe;
      const acc_t v_th_moe = s.v_th_moe;
      const acc_t slopes[3] = {one, one - one / tau, one - k}, dxs[4] = {one, one / tau, k, one / tau};
      for (int64_t b = begin; b < end; ++b) {
        const acc_t* g = gp + b * kExperts * N;
        double* gg = grad_gate + b * kExperts * N;
        for (int64_t i = 0; i < kExperts * N; ++i) gg[i] = 0.0;
        for (int64_t n = 0; n < N; ++n) k_terms[n] = 0.0;
        for (int64_t c = 0; c < C; ++c) {
          const int64_t row = b * C + c;
          hdlif_membranes<scalar_t, acc_t>(s, xp + row * N, T, row_stride, N, h.data(), m.data());
          for (int64_t i = 0; i < kExperts * N; ++i) carry[i] = acc_t(0);
          for (int64_t t = T - 1; t >= 0; --t) {
            const acc_t* ht = h.data() + t * kExperts * N;
            const acc_t* hprev = t > 0 ? ht - kExperts * N : ht;  // at t = 0 unread (times has_prev = 0)
            const acc_t has_prev = t > 0 ? one : acc_t(0);
            const scalar_t* gst = gsp + t * row_stride + row * N;
            const scalar_t* xt = xp + t * row_stride + row * N;
            hdlif_mixture_grad<scalar_t, acc_t>(threshold, k_moe, v_th_moe, N, ht, g, gst, xt, dmix.data(),
                                                xrow.data(), gx.data());
            for (int e = 0; e < kExperts; ++e) {
              const int64_t o = e * N;
              auto adjoint = [&](auto eif, auto plif) {
                hdlif_expert_adjoint<decltype(eif)::value, decltype(plif)::value, acc_t>(
                    threshold, tau, e == 3 ? one : slopes[e], dxs[e], s.carry, has_prev, N, dmix.data(), g + o, ht + o,
                    hprev + o, xrow.data(), carry.data() + o, gx.data(), gg + o, k_terms.data());
              };
              if (e == 3)
                adjoint(std::true_type{}, std::false_type{});
              else if (e == 2)
                adjoint(std::false_type{}, std::true_type{});
              else
                adjoint(std::false_type{}, std::false_type{});
            }
            scalar_t* gxt = gxp + t * row_stride + row * N;
            for (int64_t n = 0; n < N; ++n) store<scalar_t, acc_t>(gxt, n, gx[n]);
          }
        }
        double sum = 0.0;
        for (int64_t n = 0; n < N; ++n) sum += k_terms[n];
        k_per_sample[b] = sum;
      }
    });
    *grad_k = 0.0;
    for (int64_t b = 0; b < B; ++b) *grad_k += k_per_sample[b];
  });
  SF_EXIT
}
