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

#include <cstdint>
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

// int64 columns t, x, y, p: out[j, (p*H + y)*W + x] += 1 for the events [starts[j], ends[j]);
// false, counting nothing, unless every event has t >= 0, 0 <= x < W, 0 <= y < H and p 0 or 1.
bool count_columns(py::buffer t, py::buffer x, py::buffer y, py::buffer p, const std::vector<int64_t>& starts,
                   const std::vector<int64_t>& ends, int64_t height, int64_t width, py::buffer out) {
  const py::buffer_info bt = t.request(), bx = x.request(), by = y.request(), bp = p.request();
  const py::buffer_info frames_info = out.request(true);
  for (const auto* column : {&bt, &bx, &by, &bp})
    TORCH_CHECK(column->itemsize == 8 && (column->format == "q" || column->format == "l") &&
                    column->ndim == 1 && column->strides[0] == 8 && column->size == bx.size,
                "t, x, y, p must be contiguous int64 columns of one length");
  const int64_t count = bx.size;
  check_bounds(starts, ends, count);
  int32_t* frames = frames_of(frames_info, starts.size(), height, width);
  const auto *ts = static_cast<const int64_t*>(bt.ptr), *xs = static_cast<const int64_t*>(bx.ptr),
             *ys = static_cast<const int64_t*>(by.ptr), *ps = static_cast<const int64_t*>(bp.ptr);
  py::gil_scoped_release unlocked;
  bool inside = true;
  for (int64_t i = 0; i < count; ++i)
    inside &= ts[i] >= 0 && xs[i] >= 0 && xs[i] < width && ys[i] >= 0 && ys[i] < height && (ps[i] == 0 || ps[i] == 1);
  if (!inside) return false;
  const int64_t frame_size = 2 * height * width;
  for (size_t j = 0; j < starts.size(); ++j) {
    int32_t* frame = frames + j * frame_size;
    for (int64_t i = starts[j]; i < ends[j]; ++i) frame[(ps[i] * height + ys[i]) * width + xs[i]] += 1;
  }
  return true;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("count_dat", &count_dat, "count Prophesee DAT records into zeroed int32 frames; false if one is refused");
  m.def("count_columns", &count_columns, "count int64 event columns into zeroed int32 frames; false if one is refused");
}
