#pragma once
// Which cells the queries of a prompt-batch attention block may see, shared by
// the two tiled kernels (attention.cu's float one, attention_mma.cu's): a query
// sees a cell holding a position at or before its own, of one of its sequence.
// Lives in shared memory; every call is made by the whole block. kStages sets of
// cells: a kernel that loads the next tile while it works on this one keeps two.
#include <climits>
#include <cstdint>

#include "kernels/cuda/cuda_ops.h"

namespace kiln::cuda {

template <int kQ, int kC, int kStages = 1>
struct BatchMask {
    static_assert(kQ <= 64, "reduce_queries covers two queries per lane");
    int32_t pos[kQ], cpos[kStages][kC];   // -1: a query past the batch, a cell that is empty or past n_scan
    uint64_t seq[kQ], cseq[kStages][kC];  // sequence bits (one per query)
    int32_t max_pos, min_pos;             // the block's latest and earliest query positions
    uint64_t seqs;                        // the union of its queries' sequences

    // Queries t0 .. t0 + nq of the batch (nq <= kQ); then a barrier, then reduce_queries.
    __device__ __forceinline__ void load_queries(const AttentionArgs& a, int64_t t0, int nq) {
        const int i = threadIdx.x;
        if (i >= kQ) return;
        pos[i] = i < nq ? a.tok_pos[t0 + i] : -1;
        seq[i] = i < nq ? uint64_t(1) << a.tok_seq[t0 + i] : 0;
    }
    // max_pos, min_pos and seqs, by warp 0; read them after a barrier.
    __device__ __forceinline__ void reduce_queries() {
        const int lane = threadIdx.x & 31;
        if (threadIdx.x >= 32) return;
        int mp = -1, mn = INT32_MAX;  // queries past the batch (-1) count for neither
        uint64_t un = 0;
        for (int i = lane; i < kQ; i += 32) {
            mp = max(mp, pos[i]);
            mn = pos[i] >= 0 ? min(mn, pos[i]) : mn;
            un |= seq[i];
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            mp = max(mp, __shfl_xor_sync(0xffffffffu, mp, o));
            mn = min(mn, __shfl_xor_sync(0xffffffffu, mn, o));
            un |= __shfl_xor_sync(0xffffffffu, un, o);
        }
        if (lane == 0) {
            max_pos = mp;
            min_pos = mn;
            seqs = un;
        }
    }
    // Cells c0 .. c0 + kC into set s, one per thread below kC; true where some
    // query of the block may see the thread's cell (a tile nobody sees is skipped whole).
    __device__ __forceinline__ bool load_cells(const AttentionArgs& a, int c0, int s = 0) {
        const int i = threadIdx.x;
        if (i >= kC) return false;
        const int c = c0 + i;
        const int32_t cp = c < a.n_scan ? a.cell_pos[c] : -1;
        const uint64_t cs = c < a.n_scan ? a.cell_seqs[c] : 0;
        cpos[s][i] = cp;
        cseq[s][i] = cs;
        return cp >= 0 && cp <= max_pos && (cs & seqs) != 0;
    }
    // After load_cells, by the same thread: whether every query of the block sees
    // its cell (true past kC), so a tile all see needs no per-element mask.
    __device__ __forceinline__ bool all_see_cell(int s = 0) const {
        const int i = threadIdx.x;
        if (i >= kC) return true;
        // Each query's single sequence bit is in the cell's set.
        return cpos[s][i] >= 0 && cpos[s][i] <= min_pos && (cseq[s][i] & seqs) == seqs;
    }
    __device__ __forceinline__ bool sees(int cc, int32_t qpos, uint64_t qseq, int s = 0) const {
        const int32_t cp = cpos[s][cc];
        return cp >= 0 && cp <= qpos && (cseq[s][cc] & qseq) != 0;
    }
};

}  // namespace kiln::cuda
