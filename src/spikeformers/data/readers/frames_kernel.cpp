// Counting decoded events into frames [T, 2*H*W], for the readers' direct frame paths (counting.py).
//
// NumPy counts a frame with np.bincount over a temporary array of pixel indices, and allocates and
// clears a full 2*H*W count array for every frame: for the short recordings of N-CARS (about 2,000
// events, 16 frames) that clearing is most of the work. Here every event is read once and added at
// its pixel of a zeroed array the caller allocates. Both entry points first check every event (not
// only the counted ones) and report *counted = 0, counting nothing, when one is outside the sensor,
// has a polarity other than 0 or 1 or a negative timestamp, so that the reader's general path
// reports the error, exactly as it does without this kernel.

#include "cpp_support.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

void check_bounds(const int64_t* starts, const int64_t* ends, int64_t T, int64_t count) {
  for (int64_t j = 0; j < T; ++j)
    TORCH_CHECK(0 <= starts[j] && starts[j] <= ends[j] && ends[j] <= count, "frame ", j, " bounds out of range");
}

// A 1-D column of integers as NumPy stores it: item size 1, 2, 4 or 8 bytes, signed or not, any
// stride (a field of a structured array, unaligned too), read a block at a time as int64.
struct Column {
  const char* bytes;
  int64_t stride;
  int64_t itemsize;
  bool is_signed;

  // out[k] = column[first + k] for k < n; unsigned 64-bit values beyond int64 turn negative (refused).
  void load(int64_t first, int64_t n, int64_t* out) const {
    const char* at = bytes + first * stride;
    switch (is_signed ? itemsize : -itemsize) {
      case 1: copy<int8_t>(at, n, out); break;
      case -1: copy<uint8_t>(at, n, out); break;
      case 2: copy<int16_t>(at, n, out); break;
      case -2: copy<uint16_t>(at, n, out); break;
      case 4: copy<int32_t>(at, n, out); break;
      case -4: copy<uint32_t>(at, n, out); break;
      case 8: copy<int64_t>(at, n, out); break;
      default: copy<uint64_t>(at, n, out); break;
    }
  }

  template <typename T>
  void copy(const char* at, int64_t n, int64_t* out) const {
    for (int64_t k = 0; k < n; ++k, at += stride) {
      T value;
      std::memcpy(&value, at, sizeof(T));
      out[k] = static_cast<int64_t>(value);
    }
  }
};

constexpr int64_t kBlock = 4096;

}  // namespace

// Prophesee DAT records (little-endian uint32 timestamp, uint32 word: x bits 0..13, y bits 14..27,
// polarity bits 28..31): frames[j, (p*H + y)*W + x] += 1 for the records [starts[j], ends[j]), into
// zeroed int32 frames [T, 2*H*W], when every record is inside the sensor with polarity 0 or 1
// (*counted = 1); else *counted = 0 and frames is untouched.
extern "C" const char* frames_count_dat(const uint8_t* bytes, int64_t count, const int64_t* starts,
                                        const int64_t* ends, int64_t T, int64_t height, int64_t width,
                                        int32_t* frames, int* counted) {
  SF_ENTRY(1)
  TORCH_CHECK(height > 0 && width > 0, "the sensor size must be positive");
  check_bounds(starts, ends, T, count);
  auto word = [bytes](int64_t i) {
    const uint8_t* w = bytes + 8 * i + 4;
    return static_cast<uint32_t>(w[0]) | (static_cast<uint32_t>(w[1]) << 8) | (static_cast<uint32_t>(w[2]) << 16) |
           (static_cast<uint32_t>(w[3]) << 24);
  };
  bool inside = true;
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t w = word(i);
    inside &= (w & 0x3FFF) < width && ((w >> 14) & 0x3FFF) < height && (w >> 28) <= 1;
  }
  *counted = inside ? 1 : 0;
  if (!inside) return nullptr;
  const int64_t frame_size = 2 * height * width;
  for (int64_t j = 0; j < T; ++j) {
    int32_t* frame = frames + j * frame_size;
    for (int64_t i = starts[j]; i < ends[j]; ++i) {
      const uint32_t w = word(i);
      frame[((w >> 28) * height + ((w >> 14) & 0x3FFF)) * width + (w & 0x3FFF)] += 1;
    }
  }
  SF_EXIT
}

// Columns t, x, y, p of ``count`` integers each (columns[c] its first byte, strides[c] bytes apart,
// itemsizes[c] bytes, signs[c] 1 when signed): frames[j, (p*H + y)*W + x] += 1 for the events
// [starts[j], ends[j]), when every event has t >= 0, 0 <= x < W, 0 <= y < H and p 0 or 1
// (*counted = 1); else *counted = 0 and frames is untouched.
extern "C" const char* frames_count_columns(const char* const* columns, const int64_t* strides,
                                            const int64_t* itemsizes, const int* signs, int64_t count,
                                            const int64_t* starts, const int64_t* ends, int64_t T, int64_t height,
                                            int64_t width, int32_t* frames, int* counted) {
  SF_ENTRY(1)
  TORCH_CHECK(height > 0 && width > 0, "the sensor size must be positive");
  check_bounds(starts, ends, T, count);
  Column cols[4];
  for (int c = 0; c < 4; ++c) {
    TORCH_CHECK(itemsizes[c] == 1 || itemsizes[c] == 2 || itemsizes[c] == 4 || itemsizes[c] == 8,
                "column ", c, " has item size ", itemsizes[c]);
    cols[c] = Column{columns[c], strides[c], itemsizes[c], signs[c] != 0};
  }
  std::vector<int64_t> block(4 * kBlock);
  int64_t *bt = block.data(), *bx = bt + kBlock, *by = bx + kBlock, *bp = by + kBlock;
  bool inside = true;
  for (int64_t first = 0; first < count && inside; first += kBlock) {
    const int64_t n = std::min(kBlock, count - first);
    cols[0].load(first, n, bt), cols[1].load(first, n, bx), cols[2].load(first, n, by), cols[3].load(first, n, bp);
    for (int64_t k = 0; k < n; ++k)
      inside &= bt[k] >= 0 && bx[k] >= 0 && bx[k] < width && by[k] >= 0 && by[k] < height && (bp[k] == 0 || bp[k] == 1);
  }
  *counted = inside ? 1 : 0;
  if (!inside) return nullptr;
  const int64_t frame_size = 2 * height * width;
  for (int64_t j = 0; j < T; ++j) {
    int32_t* frame = frames + j * frame_size;
    for (int64_t first = starts[j]; first < ends[j]; first += kBlock) {
      const int64_t n = std::min(kBlock, ends[j] - first);
      cols[1].load(first, n, bx), cols[2].load(first, n, by), cols[3].load(first, n, bp);
      for (int64_t k = 0; k < n; ++k) frame[(bp[k] * height + by[k]) * width + bx[k]] += 1;
    }
  }
  SF_EXIT
}
