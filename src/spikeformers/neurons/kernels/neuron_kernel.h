// What the CPU neuron kernels share (cpu_kernel.cpp, cpu_multi_state_kernel.cpp): moving elements in and
// out of memory in the accumulation type, a vectorisable exp, the surrogates, and the memory helpers.

#pragma once

#include "cpp_support.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sys/mman.h>

namespace {

// One element in and out of memory in the accumulation type. bfloat16 goes through
// its bits so that the compiler can vectorise the conversion.
template <typename scalar_t, typename acc_t>
inline acc_t load(const scalar_t* p, int64_t i) {
  return static_cast<acc_t>(p[i]);
}
template <>
inline float load<c10::BFloat16, float>(const c10::BFloat16* p, int64_t i) {
  uint32_t bits = static_cast<uint32_t>(p[i].x) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

template <typename scalar_t, typename acc_t>
inline void store(scalar_t* p, int64_t i, acc_t value) {
  p[i] = static_cast<scalar_t>(value);
}
template <>
inline void store<c10::BFloat16, float>(c10::BFloat16* p, int64_t i, float value) {
  // Round to nearest even, as c10::BFloat16 does; NaN stays a quiet NaN.
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  p[i].x = static_cast<uint16_t>(value != value ? 0x7fc0u : rounded);
}

// exp for the sigmoid surrogate and EIF's charge. libm's expf is a scalar call that stops the
// compiler from vectorising the loops, where it is most of the work; this one is a few branch-free
// operations: e^x = 2^n * e^r with n = round(x / ln 2), |r| <= ln(2)/2, e^r by its Taylor
// series to r^7 (truncation error below 5e-9, under one float ulp). Surrogates need not be
// exact (the tests hold float32 gradients to 1e-6); an EIF membrane may differ from PyTorch's
// (whose own expf is a vector approximation too) by an ulp, which flips a spike only within an
// ulp of the threshold, as the tests allow; float64 keeps std::exp.
[[gnu::always_inline]] inline float surrogate_exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);  // e^x stays a normal float
  const float round = 12582912.0f;            // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504f + round) - round;
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;  // ln 2 in two parts
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
inline double surrogate_exp(double x) { return std::exp(x); }

// The surrogates' codes (surrogate.py: kernel_code); kGiven: values computed by the user's Python function.
enum SurrogateKind { kSigmoid = 0, kAtan = 1, kQGate = 2, kGate = 3, kGiven = 4 };

template <int SURROGATE, typename acc_t>
[[gnu::always_inline]] inline acc_t surrogate(acc_t u, acc_t alpha) {
  if (SURROGATE == kSigmoid) {
    acc_t sg = acc_t(1) / (acc_t(1) + surrogate_exp(-alpha * u));
    return alpha * sg * (acc_t(1) - sg);
  } else if (SURROGATE == kAtan) {
    acc_t z = acc_t(M_PI / 2.0) * alpha * u;
    return (alpha / acc_t(2)) / (acc_t(1) + z * z);
  } else if (SURROGATE == kQGate) {
    acc_t a = std::abs(u);
    return a > acc_t(1) / alpha ? acc_t(0) : alpha - alpha * alpha * a;
  } else {  // kGate
    return std::abs(u) < acc_t(1) / alpha ? acc_t(1) : acc_t(0);
  }
}

// A kernel output's memory, about to be written in full. A large one is fresh memory from the
// system, and its first touch (a page fault and a zeroed page per 4 KiB) can cost more than
// the kernel's arithmetic; asking for transparent huge pages turns that into one fault per
// 2 MiB. Only a hint.
void advise_huge_pages(void* data, int64_t nbytes) {
  const uintptr_t huge = uintptr_t(1) << 21;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + huge - 1) & ~(huge - 1), last = (begin + nbytes) & ~(huge - 1);
#ifdef MADV_HUGEPAGE
  if (data && last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

// Neurons per chunk: the backward keeps the chunk's T membranes in a local buffer,
// sized to stay in a core's L2 cache.
int64_t chunk_size(int64_t T, int64_t elem_size) {
  int64_t c = (int64_t(1) << 19) / (T * elem_size);
  c = std::max<int64_t>(64, std::min<int64_t>(4096, c));
  return c / 64 * 64;
}

}  // namespace
