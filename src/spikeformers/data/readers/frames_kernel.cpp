// Counting decoded events into frames [T, 2*H*W], for the readers' direct frame paths (counting.py).
//
// NumPy counts a frame with np.bincount over a temporary array of pixel indices, and allocates and
// clears a full 2*H*W count array for every frame: for the short recordings of N-CARS (about 2,000
// events, 16 frames) that clearing is most of the work. Here every event is read once and added at
// its pixel of a zeroed array the caller allocates (NumPy's zeros: torch::zeros fills with its
// thread pool, which on a busy machine waits longer than the counting takes). Both functions first
// check every event (not only the counted ones) and return false, counting nothing, when one is
// outside the sensor or has another polarity than 0 or 1, so that the reader's general path reports
// the error, exactly as it does without this kernel.

#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

void check_bounds(const std::vector<int64_t>& starts, const std::vector<int64_t>& ends, int64_t count) {
  TORCH_CHECK(starts.size() == ends.size(), "starts and ends differ in length");
  for (size_t j = 0; j < starts.size(); ++j)
    TORCH_CHECK(0 <= starts[j] && starts[j] <= ends[j] && ends[j] <= count, "frame ", j, " bounds out of range");
}

// The caller's zeroed int32 frames [T, 2*H*W], checked against T, H and W.
int32_t* frames_of(const py::buffer_info& out, size_t time_steps, int64_t height, int64_t width) {
  TORCH_CHECK(out.itemsize == 4 && (out.format == "i" || out.format == "l") && !out.readonly &&
                  out.size == static_cast<py::ssize_t>(time_steps) * 2 * height * width,
              "out must be writable int32 frames of T * 2 * H * W");
  TORCH_CHECK(height > 0 && width > 0, "the sensor size must be positive");
  return static_cast<int32_t*>(out.ptr);
}

}  // namespace

// Prophesee DAT records (little-endian uint32 timestamp, uint32 word: x bits 0..13, y bits 14..27,
// polarity bits 28..31): out[j, (p*H + y)*W + x] += 1 for the records [starts[j], ends[j]).
bool count_dat(py::buffer records, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
               int64_t height, int64_t width, py::buffer out) {
  const py::buffer_info rec = records.request();
  const py::buffer_info frames_info = out.request(true);
  TORCH_CHECK(rec.itemsize == 1 && rec.ndim == 1 && rec.size % 8 == 0, "records must be the body's bytes");
  const int64_t count = rec.size / 8;
  check_bounds(starts, ends, count);
  int32_t* frames = frames_of(frames_info, starts.size(), height, width);
  const auto* bytes = static_cast<const uint8_t*>(rec.ptr);
  auto word = [bytes](int64_t i) {
    const uint8_t* w = bytes + 8 * i + 4;
    return static_cast<uint32_t>(w[0]) | (static_cast<uint32_t>(w[1]) << 8) | (static_cast<uint32_t>(w[2]) << 16) |
           (static_cast<uint32_t>(w[3]) << 24);
  };
  py::gil_scoped_release unlocked;  // only the buffers are touched from here on (data loader threads)
  bool inside = true;
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t w = word(i);
    inside &= (w & 0x3FFF) < width && ((w >> 14) & 0x3FFF) < height && (w >> 28) <= 1;
  }
  if (!inside) return false;
  const int64_t frame_size = 2 * height * width;
  for (size_t j = 0; j < starts.size(); ++j) {
    int32_t* frame = frames + j * frame_size;
    for (int64_t i = starts[j]; i < ends[j]; ++i) {
      const uint32_t w = word(i);
      frame[((w >> 28) * height + ((w >> 14) & 0x3FFF)) * width + (w & 0x3FFF)] += 1;
    }
  }
  return true;
}

// A 1-D column of integers as the buffer protocol gives it: any of the integer types (or bool), any
// stride (a field of a structured array, unaligned too), read a block at a time as int64.
class Column {
 public:
  explicit Column(const py::buffer_info& info) : bytes_(static_cast<const char*>(info.ptr)), size_(info.size) {
    TORCH_CHECK(info.ndim == 1, "a column must be 1-D");
    const char code = info.format.empty() ? '\0' : info.format.back();
    TORCH_CHECK(info.format.size() == 1 || info.format[0] == '<' || info.format[0] == '=' || info.format[0] == '@',
                "a column must be in native byte order");
    TORCH_CHECK(std::string("bBhHiIlLqQ?").find(code) != std::string::npos && code != '\0',
                "a column must hold integers or booleans, not ", info.format);
    TORCH_CHECK(info.itemsize == 1 || info.itemsize == 2 || info.itemsize == 4 || info.itemsize == 8,
                "unexpected item size ", info.itemsize);
    itemsize_ = info.itemsize;
    signed_ = code == 'b' || code == 'h' || code == 'i' || code == 'l' || code == 'q';
    stride_ = info.strides[0];
  }
  int64_t size() const { return size_; }
  // out[k] = column[first + k] for k < count; unsigned 64-bit values beyond int64 turn negative (refused).
  void load(int64_t first, int64_t count, int64_t* out) const {
    const char* at = bytes_ + first * stride_;
    switch (itemsize_ * (signed_ ? 1 : -1)) {
      case 1: copy<int8_t>(at, count, out); break;
      case -1: copy<uint8_t>(at, count, out); break;
      case 2: copy<int16_t>(at, count, out); break;
      case -2: copy<uint16_t>(at, count, out); break;
      case 4: copy<int32_t>(at, count, out); break;
      case -4: copy<uint32_t>(at, count, out); break;
      case 8: copy<int64_t>(at, count, out); break;
      default: copy<uint64_t>(at, count, out); break;
    }
  }

 private:
  template <typename T>
  void copy(const char* at, int64_t count, int64_t* out) const {
    for (int64_t k = 0; k < count; ++k, at += stride_) {
      T value;
      std::memcpy(&value, at, sizeof(T));
      out[k] = static_cast<int64_t>(value);
    }
  }
  const char* bytes_;
  int64_t size_;
  int64_t itemsize_ = 8;
  bool signed_ = true;
  int64_t stride_ = 8;
};

constexpr int64_t kBlock = 4096;

// Columns t, x, y, p (``Column``): out[j, (p*H + y)*W + x] += 1 for the events [starts[j], ends[j]);
// false, counting nothing, unless every event has t >= 0, 0 <= x < W, 0 <= y < H and p 0 or 1.
bool count_columns(py::buffer t, py::buffer x, py::buffer y, py::buffer p, const std::vector<int64_t>& starts,
                   const std::vector<int64_t>& ends, int64_t height, int64_t width, py::buffer out) {
  const py::buffer_info bt = t.request(), bx = x.request(), by = y.request(), bp = p.request();
  const py::buffer_info frames_info = out.request(true);
  const Column ts(bt), xs(bx), ys(by), ps(bp);
  const int64_t count = xs.size();
  TORCH_CHECK(ts.size() == count && ys.size() == count && ps.size() == count, "t, x, y, p differ in length");
  check_bounds(starts, ends, count);
  int32_t* frames = frames_of(frames_info, starts.size(), height, width);
  py::gil_scoped_release unlocked;
  std::vector<int64_t> block(4 * kBlock);
  int64_t *bt_ = block.data(), *bx_ = bt_ + kBlock, *by_ = bx_ + kBlock, *bp_ = by_ + kBlock;
  bool inside = true;
  for (int64_t first = 0; first < count && inside; first += kBlock) {
    const int64_t n = std::min(kBlock, count - first);
    ts.load(first, n, bt_), xs.load(first, n, bx_), ys.load(first, n, by_), ps.load(first, n, bp_);
    for (int64_t k = 0; k < n; ++k)
      inside &= bt_[k] >= 0 && bx_[k] >= 0 && bx_[k] < width && by_[k] >= 0 && by_[k] < height &&
                (bp_[k] == 0 || bp_[k] == 1);
  }
  if (!inside) return false;
  const int64_t frame_size = 2 * height * width;
  for (size_t j = 0; j < starts.size(); ++j) {
    int32_t* frame = frames + j * frame_size;
    for (int64_t first = starts[j]; first < ends[j]; first += kBlock) {
      const int64_t n = std::min(kBlock, ends[j] - first);
      xs.load(first, n, bx_), ys.load(first, n, by_), ps.load(first, n, bp_);
      for (int64_t k = 0; k < n; ++k) frame[(bp_[k] * height + by_[k]) * width + bx_[k]] += 1;
    }
  }
  return true;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("count_dat", &count_dat, "count Prophesee DAT records into zeroed int32 frames; false if one is refused");
  m.def("count_columns", &count_columns, "count integer event columns into zeroed int32 frames; false if one is refused");
}
