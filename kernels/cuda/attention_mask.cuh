#pragma once
// Which cells the queries of a prompt-batch attention block may see, shared by
// the two tiled kernels (attention.cu's float one, attention_mma.cu's): a query
// sees a cell holding a position at or before its own, of one of its sequence.
// Lives in shared memory; every call is made by the whole block.
#include <cstdint>

#include "kernels/cuda/cuda_ops.h"

namespace kiln::cuda {

template <int kQ, int kC>
struct BatchMask {
    static_assert(kQ <= 64, "reduce_queries covers two queries per lane");
    int32_t pos[kQ], cpos[kC];   // -1: a query past the batch, a cell that is empty or past n_scan
    uint64_t seq[kQ], cseq[kC];  // sequence bits
    int32_t max_pos;             // the block's latest query position
    uint64_t seqs;               // the union of its queries' sequences

    // Queries t0 .. t0 + nq of the batch (nq <= kQ); then a barrier, then reduce_queries.
    __device__ __forceinline__ void load_queries(const AttentionArgs& a, int64_t t0, int nq) {
        const int i = threadIdx.x;
        if (i >= kQ) return;
        pos[i] = i < nq ? a.tok_pos[t0 + i] : -1;
        seq[i] = i < nq ? uint64_t(1) << a.tok_seq[t0 + i] : 0;
    }
    // max_pos and seqs, by warp 0; read them after a barrier.
    __device__ __forceinline__ void reduce_queries() {
        const int lane = threadIdx.x & 31;
        if (threadIdx.x >= 32) return;
        int mp = lane < kQ ? pos[lane] : -1;
        uint64_t un = lane < kQ ? seq[lane] : 0;
        if (lane + 32 < kQ) {
            mp = max(mp, pos[lane + 32]);
            un |= seq[lane + 32];
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            mp = max(mp, __shfl_xor_sync(0xffffffffu, mp, o));
            un |= __shfl_xor_sync(0xffffffffu, un, o);
        }
        if (lane == 0) {
            max_pos = mp;
            seqs = un;
        }
    }
    // Cells c0 .. c0 + kC, one per thread below kC; true where some query of the
    // block may see the thread's cell (a tile nobody sees is skipped whole).
    __device__ __forceinline__ bool load_cells(const AttentionArgs& a, int c0) {
        const int i = threadIdx.x;
        if (i >= kC) return false;
        const int c = c0 + i;
        const int32_t cp = c < a.n_scan ? a.cell_pos[c] : -1;
        const uint64_t cs = c < a.n_scan ? a.cell_seqs[c] : 0;
        cpos[i] = cp;
        cseq[i] = cs;
        return cp >= 0 && cp <= max_pos && (cs & seqs) != 0;
    }
    __device__ __forceinline__ bool sees(int cc, int32_t qpos, uint64_t qseq) const {
        const int32_t cp = cpos[cc];
        return cp >= 0 && cp <= qpos && (cseq[cc] & qseq) != 0;
    }
};

}  // namespace kiln::cuda
