// Counting AEDAT 2.0 events straight from the file's bytes into frames [T, 2*H*W].
//
// The NumPy path (aedat2.py) gathers each frame's pixel indices into a temporary
// array and counts them with np.bincount; this reads each 8-byte record once,
// decodes its big-endian address, and adds one at that address's pixel: no
// temporary at all. Only for the plain case, where every address fits 15 bits, so
// that every record is a DVS128 event: it checks that first, over every record, and
// says so otherwise (*plain = 0: external events or foreign addresses, for
// aedat2.py's NumPy path).

#include "cpp_support.h"

#include <cstdint>

// frames[j, table[address of event i]] += 1 for i in [starts[j], ends[j]), into frames [T, frame_size]
// (int32, zeroed by the caller), when every record's address fits 15 bits (*plain = 1); else
// *plain = 0 and frames is untouched.
extern "C" const char* aedat2_count_frames(const uint8_t* bytes, int64_t count, const int64_t* pixel,
                                           const int64_t* starts, const int64_t* ends, int64_t T,
                                           int64_t frame_size, int32_t* frames, int* plain) {
  SF_ENTRY(1)
  for (int64_t k = 0; k < 32768; ++k)
    TORCH_CHECK(pixel[k] >= 0 && pixel[k] < frame_size, "table entry ", k, " lies outside the frame");
  for (int64_t j = 0; j < T; ++j)
    TORCH_CHECK(0 <= starts[j] && starts[j] <= ends[j] && ends[j] <= count, "frame ", j, " bounds out of range");
  uint32_t high = 0;  // address bits 15..31, of every record
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* record = bytes + 8 * i;
    high |= record[0] | record[1] | (record[2] & 0x80);
  }
  *plain = high ? 0 : 1;
  if (high) return nullptr;
  for (int64_t j = 0; j < T; ++j) {
    int32_t* frame = frames + j * frame_size;
    for (int64_t i = starts[j]; i < ends[j]; ++i) {
      const uint8_t* record = bytes + 8 * i;
      const int address = ((record[2] & 0x7F) << 8) | record[3];  // bits 0..14, big-endian
      frame[pixel[address]] += 1;
    }
  }
  SF_EXIT
}
