// Counting AEDAT 2.0 events straight from the file's bytes into frames [T, 2*H*W].
//
// The NumPy path (aedat2.py) gathers each frame's pixel indices into a temporary
// array and counts them with np.bincount; this reads each 8-byte record once,
// decodes its big-endian address, and adds one at that address's pixel: no
// temporary at all. Only for the plain case, where every address fits 15 bits, so
// that every record is a DVS128 event: it checks that first, over every record, and
// gives None otherwise (external events or foreign addresses: aedat2.py's NumPy path).

#include <torch/extension.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace py = pybind11;

// frames[j, table[address of event i]] += 1 for i in [starts[j], ends[j]); None unless every
// record's address fits 15 bits
std::optional<torch::Tensor> count_frames(py::buffer records, py::buffer table, const std::vector<int64_t>& starts,
                           const std::vector<int64_t>& ends, int64_t frame_size) {
  const py::buffer_info rec = records.request(), tab = table.request();
  TORCH_CHECK(rec.itemsize == 1 && rec.ndim == 1 && rec.size % 8 == 0, "records must be the body's bytes");
  TORCH_CHECK(tab.itemsize == 8 && tab.ndim == 1 && tab.size == 32768, "table must hold 32768 int64 pixel indices");
  TORCH_CHECK(starts.size() == ends.size(), "starts and ends differ in length");
  const int64_t count = rec.size / 8;
  const auto* bytes = static_cast<const uint8_t*>(rec.ptr);
  const auto* pixel = static_cast<const int64_t*>(tab.ptr);
  for (int64_t k = 0; k < 32768; ++k)
    TORCH_CHECK(pixel[k] >= 0 && pixel[k] < frame_size, "table entry ", k, " lies outside the frame");
  uint32_t high = 0;  // address bits 15..31, of every record
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* record = bytes + 8 * i;
    high |= record[0] | record[1] | (record[2] & 0x80);
  }
  if (high) return std::nullopt;
  const int64_t T = static_cast<int64_t>(starts.size());
  auto frames = torch::zeros({T, frame_size}, torch::kInt32);
  int32_t* out = frames.data_ptr<int32_t>();
  for (int64_t j = 0; j < T; ++j) {
    TORCH_CHECK(0 <= starts[j] && starts[j] <= ends[j] && ends[j] <= count, "frame ", j, " bounds out of range");
    int32_t* frame = out + j * frame_size;
    for (int64_t i = starts[j]; i < ends[j]; ++i) {
      const uint8_t* record = bytes + 8 * i;
      const int address = ((record[2] & 0x7F) << 8) | record[3];  // bits 0..14, big-endian
      frame[pixel[address]] += 1;
    }
  }
  return frames;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("count_frames", &count_frames, "AEDAT 2.0 records counted into frames");
}
