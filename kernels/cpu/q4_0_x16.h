#pragma once
// Q4_0 weights re-laid at load time for the x86 integer kernels ("q4_0 x16"):
// 16 rows interleaved so that one sequential stream feeds 16 outputs, every
// vector load is 64-byte aligned, and each int32 lane of a vpdpbusd is one row.
//
// A group of 16 rows with nb blocks per row takes nb * 288 bytes, the same as
// the 16 plain rows (18 bytes per block and row):
//   quants: nb * 256 bytes; block b at 256 * b, as 4 chunks of 64 bytes; chunk k
//           holds, in its 4-byte lane r, bytes 4k..4k+3 of row r's block b qs.
//           So the low nibbles of chunk k are elements 4k..4k+3 of each row and
//           the high nibbles elements 16+4k..16+4k+3: a dot with the int32 at
//           byte 4k (low) or 16+4k (high) of the activation block.
//   scales: nb * 32 bytes after the quants; block b's 16 fp16 d, row by row.
// The last group of a tensor whose row count is not a multiple of 16 is padded
// with zero rows (zero quants, zero scales) whose outputs kernels never store.
#include <cstddef>
#include <cstdint>

namespace kiln::cpu {

inline constexpr int64_t kQ4_0GroupRows = 16;

// Bytes of one group of rows of n_in values (n_in a multiple of 32).
inline constexpr size_t q4_0_x16_group_bytes(int64_t n_in) { return size_t(n_in / 32) * 288; }
inline constexpr int64_t q4_0_x16_groups(int64_t n_rows) { return (n_rows + kQ4_0GroupRows - 1) / kQ4_0GroupRows; }

// Repacks groups [g0, g1) of a Q4_0 tensor (n_rows plain rows `src_stride` bytes
// apart) into `dst`, which holds the whole repacked tensor.
void repack_q4_0_x16(const uint8_t* src, size_t src_stride, int64_t n_rows, int64_t n_in, int64_t g0, int64_t g1,
                     uint8_t* dst);

}  // namespace kiln::cpu
