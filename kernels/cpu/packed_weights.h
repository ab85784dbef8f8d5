// Weight matrices rearranged once, at load time, for kernels that read four rows at a time.
//
// Rows are taken in groups of four; a group stores, block by block, the four rows' scales and
// then their quantized values, so one 64-byte load brings a block of all four rows:
//   Q4_1: d[4] fp16, m[4] fp16, qs[4][16]   (80 bytes per group and block)
//   Q8_0: d[4] fp16, qs[4][32]              (136 bytes per group and block)
// The values are the file's, bit for bit: only their order changes, so results do not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/weight_view.h"

namespace weft::kernels::cpu {

// Whether `w` can be packed: Q4_1 or Q8_0, rows a multiple of four.
bool can_pack_rows4(const WeightView& w);
// Bytes of one group of four rows in the packed layout.
size_t packed_group_bytes(const WeightView& w);
// The packed copy of `w` (which must satisfy can_pack_rows4).
std::vector<uint8_t> pack_rows4(const WeightView& w);

}  // namespace weft::kernels::cpu
