// Fused multi-step neurons with one membrane (LIF, PLIF, IF, EIF, QIF, KLIF, ILIF, NILIF) for the CPU: one
// pass over T forward, one backward. Those with more state: cpu_multi_state_kernel.cpp.
//
// x is [T, N] (N neurons, contiguous). Forward writes only the spikes; backward
// recomputes the membrane from the saved input, a cache-sized chunk of neurons
// at a time, so nothing but x is kept between the two passes. Threads split the
// neurons (each neuron's recurrence is sequential in t, neurons are independent).
//
// Exactness: the membrane is computed with the very operations, in the very order,
// of the spec's PyTorch charge (spikeformers/neurons/spec.py), and the file
// is compiled with -ffp-contract=off, so no fused multiply-add changes a rounding:
// spikes are identical to the reference's, value for value. Half-precision inputs
// are integrated in float32 (acc_t), float64 in float64.

#include "neuron_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <sys/mman.h>
#include <vector>

namespace {

// The static settings, already in the accumulation type: the spec's kernel constants
// (spikeformers/neurons/spec.py, KernelConstants, in that order), derived there once for
// every kernel. The charge is written so that LIF, PLIF and IF are one expression with
// exact neutral constants:
//   decay_input:     h = v + ((x - (v - rest)) * mul) / div
//   not decay_input: h = (v - ((v - rest) * mul) / div) + x
// LIF: mul 1, div tau; PLIF: mul k, div 1; IF: not decay_input, mul 0, div 1.
// Multiplying or dividing by 1 and adding 0 are exact, so each kind rounds exactly
// as its own textbook formula does. The reset is v = fired ? h * keep - sub : h,
// with keep 1, sub threshold (soft) or keep 0, sub -v_reset (hard): again exact.
template <typename acc_t>
struct Settings {
  acc_t mul, div, rest, threshold, keep, sub;
  // backward
  acc_t decay;        // dh[t+1]/dv[t]; 0 with detach_mem
  acc_t reset_grad;   // 1, or 0 with detach_reset: weight of the spike's path through the reset
  acc_t v_reset;      // hard reset level (unused for soft)
  acc_t x_mul, x_div; // dh/dx = x_mul / x_div
  acc_t alpha;
  acc_t scale;        // kScaled's learned k
  acc_t p0, p1, p2;   // kExp (delta_T, theta_rh, v_rest), kQuad (a0, v_rest, v_c)
  bool decay_input;
};

// The kernels' charges, by the spec's code (FUSED_KINDS in spec.py). A new charge is a new
// code here, in charge() and in the backward's derivatives, and in the Triton kernels.
//   kExp:    h = v + (((x + p2) - v) + p0 * exp((v - p1) / p0)) / div      (EIF)
//   kQuad:   h = v + (x + p0 * (v - p1) * (v - p2)) / div                   (QIF)
//   kScaled: h = max(scale * linear(v, x), 0), linear with mul 1, div tau    (KLIF)
// The nonlinear charges' dh[t+1]/dv[t] depends on v[t]: backward evaluates it per step, and decay
// is then only the detach_mem switch (1 or 0).
//   kInteger: the linear charge (mul 1, div tau); spikes round(clamp(h / threshold, 0, p0) / p1), integers,
//             and the reset h - spikes * threshold                               (ILIF, NILIF)
enum ChargeKind { kLinear = 0, kExp = 1, kQuad = 2, kScaled = 3, kInteger = 4 };

constexpr int kConstants = 16;

template <typename acc_t>
Settings<acc_t> settings(int64_t charge_kind, bool decay_input, const std::vector<double>& c) {
  TORCH_CHECK(charge_kind >= kLinear && charge_kind <= kInteger, "unknown charge kind ", charge_kind);
  TORCH_CHECK(c.size() == kConstants, "expected ", kConstants, " kernel constants, got ", c.size());
  Settings<acc_t> s{};
  s.mul = acc_t(c[0]); s.div = acc_t(c[1]); s.rest = acc_t(c[2]); s.threshold = acc_t(c[3]);
  s.keep = acc_t(c[4]); s.sub = acc_t(c[5]); s.decay = acc_t(c[6]); s.reset_grad = acc_t(c[7]);
  s.v_reset = acc_t(c[8]); s.x_mul = acc_t(c[9]); s.x_div = acc_t(c[10]); s.alpha = acc_t(c[11]);
  s.scale = acc_t(c[12]); s.p0 = acc_t(c[13]); s.p1 = acc_t(c[14]); s.p2 = acc_t(c[15]);
  s.decay_input = decay_input;
  return s;
}

template <bool DECAY_INPUT, typename acc_t>
inline acc_t linear_charge(const Settings<acc_t>& s, acc_t v, acc_t x) {
  if constexpr (DECAY_INPUT) return v + ((x - (v - s.rest)) * s.mul) / s.div;
  return (v - ((v - s.rest) * s.mul) / s.div) + x;
}

template <int KIND, bool DECAY_INPUT, typename acc_t>
inline acc_t charge(const Settings<acc_t>& s, acc_t v, acc_t x) {
  if constexpr (KIND == kExp) {
    return v + (((x + s.p2) - v) + s.p0 * surrogate_exp((v - s.p1) / s.p0)) / s.div;
  } else if constexpr (KIND == kQuad) {
    return v + (x + (s.p0 * (v - s.p1)) * (v - s.p2)) / s.div;
  } else if constexpr (KIND == kScaled) {
    const acc_t h = s.scale * linear_charge<DECAY_INPUT>(s, v, x);
    return h > acc_t(0) ? h : acc_t(0);
  } else {
    return linear_charge<DECAY_INPUT>(s, v, x);
  }
}

// dh[t+1]/dv[t] of a nonlinear charge at v = v[t] (times decay, the detach_mem switch).
template <int KIND, typename acc_t>
inline acc_t charge_slope(const Settings<acc_t>& s, acc_t v) {
  if constexpr (KIND == kExp) return acc_t(1) + (surrogate_exp((v - s.p1) / s.p0) - acc_t(1)) / s.div;
  else if constexpr (KIND == kQuad) return acc_t(1) + (s.p0 * ((v - s.p1) + (v - s.p2))) / s.div;
  else return acc_t(1);
}

template <typename acc_t>
inline acc_t after_spike(const Settings<acc_t>& s, acc_t h, bool fired) {
  return fired ? h * s.keep - s.sub : h;
}

// kInteger's spikes, as torch computes round(clamp(h / threshold, 0, D) / divisor): adding and taking
// away 2^23 (float) or 2^52 (double) rounds a value in [0, 2^22) to the nearest integer, ties to even,
// as torch.round does, in two operations the compiler can vectorise.
template <typename acc_t>
inline acc_t integer_spike(const Settings<acc_t>& s, acc_t h) {
  acc_t u = h / s.threshold;
  u = u < acc_t(0) ? acc_t(0) : (u > s.p0 ? s.p0 : u);
  u = u / s.p1;  // ILIF's divisor is 1: exact
  const acc_t magic = sizeof(acc_t) == 4 ? acc_t(8388608.0) : acc_t(4503599627370496.0);
  return (u + magic) - magic;
}



// The loops below branch only on template parameters, so each compiles to straight-line
// code that the compiler can vectorise.
template <int KIND, bool DECAY_INPUT, bool SPIKES, bool H_LOCAL, bool H_FULL, typename scalar_t, typename acc_t>
void forward_loop(const Settings<acc_t>& settings, const scalar_t* x, scalar_t* spikes, acc_t* h_local,
                  acc_t* h_full, int64_t T, int64_t N, int64_t start, int64_t len, acc_t* v) {
  const Settings<acc_t> s = settings;  // a local copy: read through the reference, it might alias the stores
  for (int64_t i = 0; i < len; ++i) v[i] = s.rest;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t base = t * N + start;
    for (int64_t i = 0; i < len; ++i) {
      const acc_t h = charge<KIND, DECAY_INPUT>(s, v[i], load<scalar_t, acc_t>(x, base + i));
      if constexpr (H_LOCAL) h_local[t * len + i] = h;  // the chunk's own [T, len] buffer
      if constexpr (H_FULL) h_full[base + i] = h;       // the whole [T, N] tensor
      if constexpr (KIND == kInteger) {
        const acc_t spike = integer_spike(s, h);
        if constexpr (SPIKES) store<scalar_t, acc_t>(spikes, base + i, spike);
        v[i] = h - spike * s.threshold;
      } else {
        const bool fired = h >= s.threshold;
        if constexpr (SPIKES) store<scalar_t, acc_t>(spikes, base + i, fired ? acc_t(1) : acc_t(0));
        v[i] = after_spike(s, h, fired);
      }
    }
  }
}

// One chunk of neurons [start, start + len) over all T: writes the spikes (and h into the
// [T, N] tensor h_full) when spikes is given, else only h into the chunk buffer h_local.
template <int KIND, typename scalar_t, typename acc_t>
void forward_chunk(const Settings<acc_t>& s, const scalar_t* x, scalar_t* spikes, acc_t* h_local, acc_t* h_full,
                   int64_t T, int64_t N, int64_t start, int64_t len, acc_t* v) {
  auto run = [&](auto decay_input) {
    constexpr bool D = decltype(decay_input)::value;
    if (!spikes)
      forward_loop<KIND, D, false, true, false>(s, x, spikes, h_local, h_full, T, N, start, len, v);
    else if (h_full)
      forward_loop<KIND, D, true, false, true>(s, x, spikes, h_local, h_full, T, N, start, len, v);
    else
      forward_loop<KIND, D, true, false, false>(s, x, spikes, h_local, h_full, T, N, start, len, v);
  };
  if (s.decay_input)
    run(std::true_type{});
  else
    run(std::false_type{});
}

}  // namespace

// Writes the spikes [T, N] and, when h is given, the membrane (in the compute type): backward
// needs it only for a surrogate that is not built in, whose derivative Python computes.
// The constants are the spec's kernel constants, in their order.
extern "C" const char* neuron_forward(int dtype, const void* x, void* spikes, void* h, int64_t T, int64_t N,
                                      int64_t charge_kind, int decay_input, const double* constants,
                                      int64_t n_constants, int threads) {
  SF_ENTRY(threads)
  const std::vector<double> c(constants, constants + n_constants);
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Settings<acc_t> s = settings<acc_t>(charge_kind, decay_input != 0, c);
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    scalar_t* sp = static_cast<scalar_t*>(spikes);
    acc_t* hp = static_cast<acc_t*>(h);
    advise_huge_pages(sp, T * N * int64_t(sizeof(scalar_t)));
    advise_huge_pages(hp, hp ? T * N * int64_t(sizeof(acc_t)) : 0);
    const int64_t C = 4096;
    const int64_t chunks = (N + C - 1) / C;
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      std::vector<acc_t> v(C);
      for (int64_t c = begin; c < end; ++c) {
        const int64_t start = c * C, len = std::min(C, N - start);
        switch (charge_kind) {
          case kExp: forward_chunk<kExp, scalar_t, acc_t>(s, xp, sp, nullptr, hp, T, N, start, len, v.data()); break;
          case kQuad: forward_chunk<kQuad, scalar_t, acc_t>(s, xp, sp, nullptr, hp, T, N, start, len, v.data()); break;
          case kScaled: forward_chunk<kScaled, scalar_t, acc_t>(s, xp, sp, nullptr, hp, T, N, start, len, v.data()); break;
          case kInteger: forward_chunk<kInteger, scalar_t, acc_t>(s, xp, sp, nullptr, hp, T, N, start, len, v.data()); break;
          default: forward_chunk<kLinear, scalar_t, acc_t>(s, xp, sp, nullptr, hp, T, N, start, len, v.data());
        }
      }
    });
  });
  SF_EXIT
}

namespace {

// dL/dk's terms of step t, added per neuron into k_lanes (float64): dh[t]/dk is, with v[t-1] held fixed,
// x[t] - (v[t-1] - rest) (decay_input) or -(v[t-1] - rest) for a learned leak (PLIF), and for kScaled
// (KLIF) the linear charge of v[t-1] and x[t] where the rectifier passes. HAS_PREV: v[t-1] is the
// reset of h[t-1], else (t = 0) the rest level. Not inlined: one copy per charge and dtype, rather than one in
// each surrogate's and reset's backward, halves the library's build time.
template <int KIND, bool HAS_PREV, typename scalar_t, typename acc_t>
[[gnu::noinline]] void k_terms(const Settings<acc_t>& settings, const scalar_t* __restrict__ x, int64_t base,
                               int64_t len, const acc_t* __restrict__ gh, const acc_t* __restrict__ ht,
                               const acc_t* __restrict__ hprev, double* __restrict__ k_lanes) {
  const Settings<acc_t> s = settings;  // a local copy, as in forward_loop
  auto run = [&](auto decay_input) {  // the switch outside the loop, which then has no branch
    constexpr bool DECAY_INPUT = decltype(decay_input)::value;
    for (int64_t i = 0; i < len; ++i) {
      const acc_t v_prev = HAS_PREV ? after_spike(s, hprev[i], hprev[i] >= s.threshold) : s.rest;
      const acc_t xv = load<scalar_t, acc_t>(x, base + i);
      acc_t term;
      if constexpr (KIND == kScaled) {
        term = ht[i] > acc_t(0) ? gh[i] * linear_charge<DECAY_INPUT>(s, v_prev, xv) : acc_t(0);
      } else {
        const acc_t leak = v_prev - s.rest;
        term = gh[i] * (DECAY_INPUT ? xv - leak : -leak);
      }
      k_lanes[i] += static_cast<double>(term);
    }
  };
  if (s.decay_input)
    run(std::true_type{});
  else
    run(std::false_type{});
}

template <int KIND, int SURROGATE, bool SOFT, bool GRAD_K, typename scalar_t, typename acc_t>
void backward_chunk(const Settings<acc_t>& settings, const scalar_t* __restrict__ grad_spikes, const scalar_t* __restrict__ x,
                    const acc_t* h_given, const acc_t* __restrict__ sg_given, scalar_t* __restrict__ grad_x, int64_t T,
                    int64_t N, int64_t start, int64_t len, acc_t* hbuf, acc_t* __restrict__ v,
                    acc_t* __restrict__ carry, double* __restrict__ k_lanes, double& grad_k) {
  const Settings<acc_t> s = settings;  // a local copy, as in forward_loop
  // The chunk's membranes, recomputed from x (or read back when Python kept them).
  const acc_t* h = hbuf;
  int64_t hstride = len;
  if (h_given) {
    h = h_given + start;
    hstride = N;
  } else {
    forward_chunk<KIND, scalar_t, acc_t>(s, x, nullptr, hbuf, nullptr, T, N, start, len, v);
  }
  for (int64_t i = 0; i < len; ++i) carry[i] = acc_t(0);
  acc_t* __restrict__ gh_row = v;  // dL/dh[t] of the step at hand, for dL/dk (v is free once h is recomputed)
  // dL/dk per neuron, summed over t in float64, then over the neurons in order after the loop: one
  // running sum would keep the compiler from vectorising the loop.
  if constexpr (GRAD_K)
    for (int64_t i = 0; i < len; ++i) k_lanes[i] = 0.0;
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t base = t * N + start;
    const acc_t* __restrict__ ht = h + t * hstride;
    const bool has_prev = t > 0;  // at t = 0 there is no h[t-1]: v[t-1] is the rest level
    const acc_t* __restrict__ hprev = has_prev ? h + (t - 1) * hstride : ht;
    if constexpr (KIND == kInteger) {
      // the spikes' straight-through gradient inside 0 <= h / threshold <= D (torch.clamp's rule), divided
      // as the forward divides; the reset subtracts the spikes, which carry no gradient there
      for (int64_t i = 0; i < len; ++i) {
        const acc_t u = ht[i] / s.threshold;
        const bool inside = u >= acc_t(0) && u <= s.p0;
        const acc_t g = load<scalar_t, acc_t>(grad_spikes, base + i);
        const acc_t gh = (inside ? (g / s.p1) / s.threshold : acc_t(0)) + carry[i] * s.decay;
        carry[i] = gh;
        store<scalar_t, acc_t>(grad_x, base + i, (gh * s.x_mul) / s.x_div);
      }
      continue;
    }
    for (int64_t i = 0; i < len; ++i) {
      const acc_t hv = ht[i];
      const acc_t sg = SURROGATE == kGiven ? sg_given[base + i] : surrogate<SURROGATE, acc_t>(hv - s.threshold, s.alpha);
      const bool fired = hv >= s.threshold;
      // dv[t]/dh[t]: what of the membrane survives the reset, plus the spike's path through it.
      acc_t dv_dh;
      if constexpr (SOFT)  // v = h - threshold * s
        dv_dh = acc_t(1) - s.reset_grad * s.threshold * sg;
      else                 // hard: v = h * (1 - s) + v_reset * s
        dv_dh = (fired ? acc_t(0) : acc_t(1)) + s.reset_grad * (s.v_reset - hv) * sg;
      // carry holds dL/dh[t+1] (kScaled: through its rectifier and scale); it reaches h[t] through
      // the leak and the reset.
      acc_t gh;
      if constexpr (KIND == kExp || KIND == kQuad)
        gh = load<scalar_t, acc_t>(grad_spikes, base + i) * sg +
             ((carry[i] * s.decay) * charge_slope<KIND>(s, after_spike(s, hv, fired))) * dv_dh;
      else
        gh = load<scalar_t, acc_t>(grad_spikes, base + i) * sg + carry[i] * s.decay * dv_dh;
      acc_t g_inner = gh;  // dL/d(the linear charge inside kScaled's rectifier)
      if constexpr (KIND == kScaled) g_inner = hv > acc_t(0) ? gh * s.scale : acc_t(0);
      carry[i] = g_inner;
      store<scalar_t, acc_t>(grad_x, base + i, (g_inner * s.x_mul) / s.x_div);
      if constexpr (GRAD_K) gh_row[i] = gh;
    }
    // dL/dk's terms in a loop of their own: inside the one above they kept it from vectorising.
    if constexpr (GRAD_K) {
      if (has_prev)
        k_terms<KIND, true>(s, x, base, len, gh_row, ht, hprev, k_lanes);
      else
        k_terms<KIND, false>(s, x, base, len, gh_row, ht, hprev, k_lanes);
    }
  }
  if constexpr (GRAD_K) {
    double k_sum = 0.0;
    for (int64_t i = 0; i < len; ++i) k_sum += k_lanes[i];
    grad_k += k_sum;
  }
}

template <int SURROGATE, typename scalar_t>
void backward_impl(int64_t charge_kind, const Settings<at::opmath_type<scalar_t>>& s, const scalar_t* gp,
                   const scalar_t* xp, const at::opmath_type<scalar_t>* hp, const at::opmath_type<scalar_t>* sgp,
                   scalar_t* gxp, int64_t T, int64_t N, bool want_grad_k, double& grad_k) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = chunk_size(T, sizeof(acc_t));
  const int64_t chunks = (N + C - 1) / C;
  // One partial sum per chunk, added in chunk order: the decay gradient does not
  // depend on how threads were scheduled.
  std::vector<double> partial(chunks, 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> hbuf(hp ? 0 : T * C), v(C), carry(C);
    std::vector<double> k_lanes(want_grad_k ? C : 0);
    for (int64_t c = begin; c < end; ++c) {
      const int64_t start = c * C, len = std::min(C, N - start);
      auto run = [&](auto kind, auto soft, auto grad_k) {
        backward_chunk<decltype(kind)::value, SURROGATE, decltype(soft)::value, decltype(grad_k)::value, scalar_t,
                       acc_t>(s, gp, xp, hp, sgp, gxp, T, N, start, len, hbuf.data(), v.data(), carry.data(),
                              k_lanes.data(), partial[c]);
      };
      // Only LIF/PLIF's and KLIF's charges have a learned parameter: the other kinds skip that variant.
      auto run_kind = [&](auto kind, auto learnable) {
        const bool soft = s.keep == acc_t(1);
        if constexpr (decltype(learnable)::value) {
          if (soft && want_grad_k) return run(kind, std::true_type{}, std::true_type{});
          if (!soft && want_grad_k) return run(kind, std::false_type{}, std::true_type{});
        }
        if (soft) run(kind, std::true_type{}, std::false_type{});
        else run(kind, std::false_type{}, std::false_type{});
      };
      using K = std::integral_constant<int, kLinear>;
      switch (charge_kind) {
        case kExp: run_kind(std::integral_constant<int, kExp>{}, std::false_type{}); break;
        case kQuad: run_kind(std::integral_constant<int, kQuad>{}, std::false_type{}); break;
        case kScaled: run_kind(std::integral_constant<int, kScaled>{}, std::true_type{}); break;
        case kInteger: run_kind(std::integral_constant<int, kInteger>{}, std::false_type{}); break;
        default: run_kind(K{}, std::true_type{});
      }
    }
  });
  for (double p : partial) grad_k += p;
}

}  // namespace

// Writes grad_x [T, N] and, for PLIF, dL/dk summed in float64 into *grad_k. h and sg (the
// membrane and the surrogate's values, in the compute type) are given only for a surrogate that
// is not built in.
extern "C" const char* neuron_backward(int dtype, const void* grad_spikes, const void* x, const void* h,
                                       const void* sg, void* grad_x, double* grad_k, int64_t T, int64_t N,
                                       int64_t charge_kind, int decay_input, const double* constants,
                                       int64_t n_constants, int64_t surrogate_kind, int want_grad_k, int threads) {
  SF_ENTRY(threads)
  TORCH_CHECK(surrogate_kind != kGiven || (sg && h), "a surrogate that is not built in needs its values");
  const std::vector<double> c(constants, constants + n_constants);
  *grad_k = 0.0;
  SF_DISPATCH_FLOATING(dtype, [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Settings<acc_t> s = settings<acc_t>(charge_kind, decay_input != 0, c);
    const scalar_t* gp = static_cast<const scalar_t*>(grad_spikes);
    const scalar_t* xp = static_cast<const scalar_t*>(x);
    const acc_t* hp = static_cast<const acc_t*>(h);
    const acc_t* sgp = static_cast<const acc_t*>(sg);
    scalar_t* gxp = static_cast<scalar_t*>(grad_x);
    advise_huge_pages(gxp, T * N * int64_t(sizeof(scalar_t)));
    const bool k = want_grad_k != 0;
    switch (surrogate_kind) {
      case kSigmoid: backward_impl<kSigmoid, scalar_t>(charge_kind, s, gp, xp, hp, sgp, gxp, T, N, k, *grad_k); break;
      case kAtan: backward_impl<kAtan, scalar_t>(charge_kind, s, gp, xp, hp, sgp, gxp, T, N, k, *grad_k); break;
      case kQGate: backward_impl<kQGate, scalar_t>(charge_kind, s, gp, xp, hp, sgp, gxp, T, N, k, *grad_k); break;
      case kGate: backward_impl<kGate, scalar_t>(charge_kind, s, gp, xp, hp, sgp, gxp, T, N, k, *grad_k); break;
      case kGiven: backward_impl<kGiven, scalar_t>(charge_kind, s, gp, xp, hp, sgp, gxp, T, N, k, *grad_k); break;
      default: TORCH_CHECK(false, "unknown surrogate kind ", surrogate_kind);
    }
  });
  SF_EXIT
}

