// What the project's C++ kernels use of PyTorch, without PyTorch's heavy headers.
//
// The kernels work on raw pointers; Python allocates their tensors and calls them through
// ctypes (cpp_build.load_library). So they need from PyTorch only its half-precision types,
// which are header-only, plus a few of ATen's helpers, written here: parsing torch/extension.h
// is most of an extension's build (a minute and more on a small CPU), this header a few seconds.
//
// Each entry point is extern "C" and returns nullptr, or the message of the error that stopped
// it (SF_ENTRY / SF_EXIT), which the Python side raises.

#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace sf {

// Threads for at::parallel_for: PyTorch's own setting, passed in by each call.
inline int& num_threads() {
  static thread_local int threads = 1;
  return threads;
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream message;
  (message << ... << args);
  throw std::runtime_error(message.str());
}

// The message handed to Python; one per calling thread.
inline const char* error_message(const std::exception& err) {
  static thread_local std::string message;
  message = err.what();
  return message.c_str();
}

}  // namespace sf

#define TORCH_CHECK(cond, ...)                                  \
  do {                                                          \
    if (!(cond)) ::sf::fail("check failed: " #cond ": ", ##__VA_ARGS__); \
  } while (0)

// An entry point's body: SF_ENTRY(threads) ... SF_EXIT
#define SF_ENTRY(threads) \
  try {                   \
    ::sf::num_threads() = std::max(1, int(threads));
#define SF_EXIT                                   \
    return nullptr;                               \
  } catch (const std::exception& err) {           \
    return ::sf::error_message(err);              \
  }

namespace at {

// Half-precision values are computed in float, as ATen does.
template <typename T>
struct OpMath { using type = T; };
template <>
struct OpMath<c10::Half> { using type = float; };
template <>
struct OpMath<c10::BFloat16> { using type = float; };
template <typename T>
using opmath_type = typename OpMath<T>::type;

// ATen's split of [begin, end) among the threads: contiguous ranges of at least `grain`
// indices, one per thread, each handed to f(range_begin, range_end). Callers whose results
// must not depend on the schedule combine per-index partial results in index order.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (end <= begin) return;
  const int64_t range = end - begin;
  const int64_t most = (range + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
  const int threads = int(std::min<int64_t>(sf::num_threads(), most));
  if (threads <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  const int64_t share = (range + threads - 1) / threads;
#pragma omp parallel num_threads(threads)
  {
    const int64_t first = begin + int64_t(omp_get_thread_num()) * share;
    if (first < end) f(first, std::min(end, first + share));
  }
}

}  // namespace at

// ATen's AT_DISPATCH for the kernels' dtypes, by the codes of cpp_build.DTYPE_CODES: the body (a
// lambda's text) is compiled once per dtype with scalar_t naming it.
#define SF_DISPATCH_FLOATING(code, ...)                                   \
  switch (code) {                                                         \
    case 0: { using scalar_t = float; (__VA_ARGS__)(); break; }           \
    case 1: { using scalar_t = double; (__VA_ARGS__)(); break; }          \
    case 2: { using scalar_t = c10::BFloat16; (__VA_ARGS__)(); break; }   \
    case 3: { using scalar_t = c10::Half; (__VA_ARGS__)(); break; }       \
    default: ::sf::fail("unsupported dtype code ", code);                 \
  }
