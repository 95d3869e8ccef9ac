// The paged KV cache on the GPU: storing a step's K/V rows into their block slots (F32, F16 or GGML Q8_0,
// as the CPU backend lays them out), and causal attention for a batch that mixes prefill chunks and decodes.
//
// Attention: one block per (row, KV head), one warp per query head of that KV head's group, so the group's
// warps read the same K/V rows (the second and later reads hit L1). A warp walks its row's keys 32 at a
// time: each lane scores one key (the whole head dot product, q from shared memory), the tile's softmax
// is folded into a running max and sum, then the lanes, each owning head_dim/32 output dimensions, add the
// tile's 32 value rows weighted by the probabilities shuffled from the lane that scored them. When few rows
// decode (a handful of blocks would leave most of the GPU idle) each row's keys are split across blocks
// (flash-decoding): every split keeps its own max and sum, and a second kernel rescales and adds them.
// An F16 cache with a head size of 64, 128 or 256 (the usual case) takes attention_f16_kernel instead, which
// reads each key once for the whole group of query heads. At a decoding step of a few rows that kernel also
// does the RoPE and the KV store of the step's keys itself (FreshKv), one kernel a layer fewer.
#include <cuda_fp16.h>

#include <algorithm>
#include <stdexcept>

#include "backend/cuda/kernels.h"
#include "backend/cuda/overlapped_launch.cuh"
#include "backend/cuda/tile_mma.cuh"
#include "backend/rope_pair.h"

namespace pensieve::backend::cuda {
namespace {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxDimsPerLane = kMaxHeadDim / 32;

struct KvGeometry {
  std::byte* k;
  std::byte* v;
  size_t block_bytes;
  size_t row_bytes;
  size_t head_bytes;
  int block_tokens;
  int head_dim;
};

KvGeometry geometry(const KvLayerView& kv) {
  return {kv.k, kv.v, kv.block_bytes, kv.row_bytes(), kv.head_bytes(), kv.block_tokens, kv.head_dim};
}

__device__ size_t slot_offset(const KvGeometry& g, const int32_t* table, int pos) {
  return static_cast<size_t>(table[pos / g.block_tokens]) * g.block_bytes +
         static_cast<size_t>(pos % g.block_tokens) * g.row_bytes;
}

template <KvElement E>
__device__ float kv_value(const std::byte* head, int d) {
  if constexpr (E == KvElement::F32) {
    return reinterpret_cast<const float*>(head)[d];
  } else if constexpr (E == KvElement::F16) {
    return __half2float(reinterpret_cast<const __half*>(head)[d]);
  } else {
    const std::byte* block = head + (d / 32) * 34;
    const float scale = __half2float(*reinterpret_cast<const __half*>(block));
    return scale * static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[d % 32]);
  }
}

// Elements [first, first + count) of row `row`'s K and V into their slot: one thread per element (F32, F16)
// or per 32-element Q8_0 block (first and count then multiples of 32).
template <KvElement E>
__device__ void store_kv_row(const KvGeometry& g, int width, const float* __restrict__ k, const float* __restrict__ v,
                             int row, int first, int count, const int32_t* __restrict__ positions,
                             const int32_t* __restrict__ seq_of_row, const int32_t* __restrict__ table_start,
                             const int32_t* __restrict__ blocks) {
  const int32_t* table = blocks + table_start[seq_of_row[row]];
  const size_t offset = slot_offset(g, table, positions[row]);
  const float* kr = k + static_cast<size_t>(row) * width;
  const float* vr = v + static_cast<size_t>(row) * width;
  if constexpr (E == KvElement::Q8_0) {
    for (int b = first / 32 + static_cast<int>(threadIdx.x); b < (first + count) / 32; b += blockDim.x) {
      for (int which = 0; which < 2; ++which) {
        const float* x = (which ? vr : kr) + 32 * b;
        std::byte* dst = (which ? g.v : g.k) + offset + static_cast<size_t>(b) * 34;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float inverse = d > 0.0f ? 1.0f / d : 0.0f;
        *reinterpret_cast<__half*>(dst) = __float2half_rn(d);
        auto* qs = reinterpret_cast<int8_t*>(dst + 2);
        for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(lroundf(x[j] * inverse));
      }
    }
  } else {
    for (int i = first + static_cast<int>(threadIdx.x); i < first + count; i += blockDim.x) {
      if constexpr (E == KvElement::F32) {
        reinterpret_cast<float*>(g.k + offset)[i] = kr[i];
        reinterpret_cast<float*>(g.v + offset)[i] = vr[i];
      } else {
        reinterpret_cast<__half*>(g.k + offset)[i] = __float2half_rn(kr[i]);
        reinterpret_cast<__half*>(g.v + offset)[i] = __float2half_rn(vr[i]);
      }
    }
  }
}

template <KvElement E>
__global__ void store_kv_kernel(KvGeometry g, int width, const float* __restrict__ k, const float* __restrict__ v,
                                const int32_t* __restrict__ positions, const int32_t* __restrict__ seq_of_row,
                                const int32_t* __restrict__ table_start, const int32_t* __restrict__ blocks) {
  store_kv_row<E>(g, width, k, v, static_cast<int>(blockIdx.x), 0, width, positions, seq_of_row, table_start,
                  blocks);
}

// RoPE on the query and key heads (in place, as rope_kernel does), and the keys and values into the cache, in
// one launch: a block per (row, head), which rotates its head and, for a KV head, stores that head's K and V.
// (At one decode row these were three kernels of a few microseconds each, all of it latency; one block per
// row spent as long again walking the row's heads.)
struct RopeHeads {
  float* q;
  float* k;
  int q_heads, kv_heads, head_dim, n_rot;
  bool neox;
};

template <KvElement E>
__global__ void rope_store_kv_kernel(KvGeometry g, RopeHeads r, const float* __restrict__ v,
                                     const float* __restrict__ cos_sin, const int32_t* __restrict__ positions,
                                     const int32_t* __restrict__ seq_of_row, const int32_t* __restrict__ table_start,
                                     const int32_t* __restrict__ blocks) {
  wait_for_prior_kernels();
  const int row = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const float* cs = cos_sin + static_cast<size_t>(row) * r.n_rot;
  const bool key = h >= r.q_heads;
  float* xh = key ? r.k + (static_cast<size_t>(row) * r.kv_heads + (h - r.q_heads)) * r.head_dim
                  : r.q + (static_cast<size_t>(row) * r.q_heads + h) * r.head_dim;
  for (int i = static_cast<int>(threadIdx.x); i < r.n_rot / 2; i += blockDim.x) rotate_pair(xh, i, r.n_rot, r.neox, cs);
  if (!key) return;
  __syncthreads();  // the block's own writes to k are visible to it after the barrier
  store_kv_row<E>(g, r.kv_heads * r.head_dim, r.k, v, row, (h - r.q_heads) * r.head_dim, r.head_dim, positions,
                  seq_of_row, table_start, blocks);
}

// Where a split writes its unnormalized output, running max and sum when a row's keys are split across blocks.
struct SplitOutput {
  float* acc = nullptr;  // [row][head][split][head_dim]
  float* max = nullptr;  // [row][head][split]
  float* sum = nullptr;
  int n_splits = 1;
  int split_keys = 0;  // keys per split, a multiple of 32
};

template <KvElement E>
__global__ void attention_kernel(KvGeometry g, const float* __restrict__ q, int n_heads, int rep, float scale,
                                 const int32_t* __restrict__ positions, const int32_t* __restrict__ seq_of_row,
                                 const int32_t* __restrict__ table_start, const int32_t* __restrict__ blocks,
                                 float* __restrict__ out, __half* __restrict__ out_f16, SplitOutput split) {
  extern __shared__ float q_shared[];  // [rep][head_dim]
  const int row = blockIdx.x, kv_head = blockIdx.y, part = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int hd = g.head_dim;
  const int head = kv_head * rep + warp;
  const int n_ctx = positions[row] + 1;
  const int key_begin = split.n_splits == 1 ? 0 : part * split.split_keys;
  const int key_end = split.n_splits == 1 ? n_ctx : min(n_ctx, key_begin + split.split_keys);

  float* qs = q_shared + warp * hd;
  const float* qrow = q + (static_cast<size_t>(row) * n_heads + head) * hd;
  for (int d = lane; d < hd; d += 32) qs[d] = qrow[d] * scale;
  __syncwarp();

  const int32_t* table = blocks + table_start[seq_of_row[row]];
  const size_t head_offset = static_cast<size_t>(kv_head) * g.head_bytes;
  float acc[kMaxDimsPerLane];
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] = 0.0f;
  float running_max = -INFINITY, running_sum = 0.0f;

  for (int t0 = key_begin; t0 < key_end; t0 += 32) {
    const int key = t0 + lane;
    float score = -INFINITY;
    if (key < key_end) {
      const std::byte* kh = g.k + slot_offset(g, table, key) + head_offset;
      float s = 0.0f;
      if constexpr (E == KvElement::F16) {
        const auto* k2 = reinterpret_cast<const __half2*>(kh);
        for (int d = 0; d < hd / 2; ++d) {
          const float2 kf = __half22float2(k2[d]);
          s = fmaf(qs[2 * d], kf.x, fmaf(qs[2 * d + 1], kf.y, s));
        }
      } else {
        for (int d = 0; d < hd; ++d) s = fmaf(qs[d], kv_value<E>(kh, d), s);
      }
      score = s;
    }
    float tile_max = score;
    for (int off = 16; off > 0; off /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, off));
    const float new_max = fmaxf(running_max, tile_max);
    const float correction = __expf(running_max - new_max);  // 0 on the first tile (running_max = -inf)
    const float p = key < key_end ? __expf(score - new_max) : 0.0f;
    float tile_sum = p;
    for (int off = 16; off > 0; off /= 2) tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, off);
    running_sum = running_sum * correction + tile_sum;
    running_max = new_max;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) acc[i] *= correction;

    const int tile_keys = min(32, key_end - t0);
    for (int t = 0; t < tile_keys; ++t) {
      const float pt = __shfl_sync(0xffffffffu, p, t);
      const std::byte* vh = g.v + slot_offset(g, table, t0 + t) + head_offset;
#pragma unroll
      for (int i = 0; i < kMaxDimsPerLane; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) acc[i] = fmaf(pt, kv_value<E>(vh, d), acc[i]);
      }
    }
  }
  if (split.n_splits == 1) {
    float* o = out + (static_cast<size_t>(row) * n_heads + head) * hd;
    const float inv = 1.0f / running_sum;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) {
        o[d] = acc[i] * inv;
        if (out_f16 != nullptr) out_f16[(static_cast<size_t>(row) * n_heads + head) * hd + d] = __float2half_rn(o[d]);
      }
    }
    return;
  }
  // A split past the row's context leaves max -inf and sum 0: the combine step gives it no weight.
  const size_t slot = (static_cast<size_t>(row) * n_heads + head) * split.n_splits + part;
  float* a = split.acc + slot * hd;
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) a[d] = acc[i];
  }
  if (lane == 0) {
    split.max[slot] = running_max;
    split.sum[slot] = running_sum;
  }
}

// The same attention for an F16 cache and a head size of 64, 128 or 256, laid out for the memory system.
// One block per (row, KV head, split) as above, but its warps split the keys (tiles of 32 taken in turn) and
// each works for every query head of the block's `group` (the KV head's whole group, or one of its heads: see
// kOneHeadMaxContext): a lane scores its own key against all of the group's queries,
// and in the value pass owns HD/32 consecutive dimensions of each head. The warps' partial softmax states are
// merged through shared memory at the end. (One warp per query head, reading its keys with a loop of
// dependent 4-byte loads, spent ~100x longer waiting on memory than the bytes take.)
//
// At one decode row and a few hundred keys the kernel is a chain of memory latencies, not a stream of bytes
// (a layer's K and V are ~1 MB): it used to take 9-11 us a layer on an H200, for both 1B and 8B, with the
// step's tables read one dependent load after another once the kernel before had finished, and a tile's 32
// value rows read eight at a time. So the tables, and the slot of each lane's first key, are read before the
// wait (the step's tables are uploaded, never written by a kernel), the first tile's rows are sent towards L2
// then, and a tile's key row and all of its value rows are loaded at once.
template <int HD, int kValueRound, bool kKeyRow>
struct F16KeyTile {
  static constexpr int kDpl = HD / 32;  // value dimensions a lane owns
  uint4 k[kKeyRow ? HD / 8 : 1];        // kKeyRow: the lane's key row is loaded here (else read while scoring)
  uint32_t v[kValueRound][kDpl / 2];

  // The lane's key (its byte offset `slot` from the cache's base, `valid` when the key is in the tile) and the
  // value rows of tile keys first .. first + kValueRound - 1; keys past the tile's `count` load the last one
  // (weighted 0 later).
  __device__ void load_values(const KvGeometry& g, size_t head_offset, size_t slot, int first, int count, int lane) {
#pragma unroll
    for (int u = 0; u < kValueRound; ++u) {
      const auto s = static_cast<size_t>(
          __shfl_sync(0xffffffffu, static_cast<unsigned long long>(slot), min(first + u, count - 1)));
      const std::byte* p = g.v + s + head_offset + kDpl * lane * 2;
      if constexpr (kDpl == 2) {
        v[u][0] = *reinterpret_cast<const uint32_t*>(p);
      } else if constexpr (kDpl == 4) {
        const uint2 w = *reinterpret_cast<const uint2*>(p);
        v[u][0] = w.x, v[u][1] = w.y;
      } else {
        const uint4 w = *reinterpret_cast<const uint4*>(p);
        v[u][0] = w.x, v[u][1] = w.y, v[u][2] = w.z, v[u][3] = w.w;
      }
    }
  }
  __device__ void load(const KvGeometry& g, size_t head_offset, size_t slot, bool valid, int count, int lane) {
    if constexpr (kKeyRow) {
      if (valid) {
        const auto* kh = reinterpret_cast<const uint4*>(g.k + slot + head_offset);
#pragma unroll
        for (int c = 0; c < HD / 8; ++c) k[c] = kh[c];
      }
    }
    load_values(g, head_offset, slot, 0, count, lane);
  }
  // Key `index` of the tile (none when out of 0..31) as the step's fresh key and value rows in shared memory
  // (see FreshKv): the cache slot the loads above read is stored in this very kernel. The rounds are
  // unrolled with a compare each, so that the registers are never indexed at run time.
  __device__ void take_fresh(const __half* k_row, const __half* v_row, int index, int lane) {
    if (index < 0 || index >= 32) return;
    if constexpr (kKeyRow) {
      if (lane == index) {
#pragma unroll
        for (int c = 0; c < HD / 8; ++c) k[c] = reinterpret_cast<const uint4*>(k_row)[c];
      }
    }
    const auto* words = reinterpret_cast<const uint32_t*>(v_row) + kDpl / 2 * lane;
#pragma unroll
    for (int u = 0; u < kValueRound; ++u) {
      if (u == index) {
#pragma unroll
        for (int i = 0; i < kDpl / 2; ++i) v[u][i] = words[i];
      }
    }
  }
};

// kWide: a few decoding rows, so a few blocks in all. Eight warps a block (256 keys a split, so that a
// context of up to 256 keys needs no second kernel to add splits up) and a tile's 32 value rows loaded with
// its key, at ~240 registers a thread. With many rows (a batch, prefill) those registers would leave one block
// a multiprocessor: there four warps read a key row 64 halves at a time while scoring and value rows eight at
// a time (with it all in registers, 8B at 20 rows of 2000 keys measured 2253-2288 tok/s against 2475-2494).
constexpr int kWideAttentionMaxRows = 4;
// Up to this many keys the wide kernel takes one query head a block, not the KV head's group: a warp's tile
// is the whole kernel's critical path there, and scoring and weighting it for four heads took four times as
// long (8B Q4_K_M at one stream, 128 + 256 tokens: 447-453 tok/s against 440-443). Every block then reads
// its KV head's rows, and at 2000 keys that cost more than it saved (371 against 412); at 768-1024 keys it
// was still slightly ahead (434 against 431 with the group from 512 keys on).
constexpr int kOneHeadMaxContext = 1024;
bool wide_f16_attention(int head_dim, int n_rows) { return head_dim <= 128 && n_rows <= kWideAttentionMaxRows; }
constexpr int f16_attention_warps(bool wide) { return wide ? 8 : 4; }

template <int HD, int MAX_REP, bool kWide>
__global__ void __launch_bounds__(f16_attention_warps(kWide) * 32) attention_f16_kernel(
    KvGeometry g, const float* __restrict__ q, int n_heads, int rep, int group, float scale,
    const int32_t* __restrict__ positions,
    const int32_t* __restrict__ seq_of_row, const int32_t* __restrict__ table_start, const int32_t* __restrict__ blocks,
    float* __restrict__ out, __half* __restrict__ out_f16, SplitOutput split, FreshKv fresh,
    const float* __restrict__ cos_sin) {
  constexpr int kWarps = f16_attention_warps(kWide);
  constexpr int DPL = HD / 32;
  using Tile = F16KeyTile<HD, kWide ? 32 : 8, kWide>;
  extern __shared__ float shared[];
  float* qs = shared;                                  // [MAX_REP][HD], pre-scaled
  float* part_max = qs + MAX_REP * HD;                 // [kWarps][MAX_REP]
  float* part_sum = part_max + kWarps * MAX_REP;       // [kWarps][MAX_REP]
  float* part_acc = part_sum + kWarps * MAX_REP;       // [kWarps][MAX_REP][HD]
  const int row = blockIdx.x, first_head = blockIdx.y * group, kv_head = first_head / rep, part = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n_ctx = positions[row] + 1;
  const int key_begin = split.n_splits == 1 ? 0 : part * split.split_keys;
  const int key_end = split.n_splits == 1 ? n_ctx : min(n_ctx, key_begin + split.split_keys);
  const int32_t* table = blocks + table_start[seq_of_row[row]];
  const size_t head_offset = static_cast<size_t>(kv_head) * g.head_bytes;
  const auto slot_of = [&](int t0) { return t0 + lane < key_end ? slot_offset(g, table, t0 + lane) : size_t{0}; };
  // With fresh keys (wide kernel only) the split that holds the row's newest key takes it from `fresh_rows`.
  const bool rotate = kWide && fresh.k != nullptr;
  const int newest = rotate && n_ctx - 1 >= key_begin && n_ctx - 1 < key_end ? n_ctx - 1 : -1;
  __shared__ __align__(16) __half fresh_rows[2][HD];
  int t0 = key_begin + 32 * warp;
  size_t slot = slot_of(t0);
  if (t0 + lane < key_end) {
    // Towards L2 while the kernel before finishes (only the newest key's row may still be in its hands).
#pragma unroll
    for (int b = 0; b < HD * 2; b += 128) {
      prefetch_l2(g.k + slot + head_offset + b);
      prefetch_l2(g.v + slot + head_offset + b);
    }
  }
  wait_for_prior_kernels();

  Tile tile;
  if (t0 < key_end) tile.load(g, head_offset, slot, t0 + lane < key_end, min(32, key_end - t0), lane);
  const float* qrow = q + (static_cast<size_t>(row) * n_heads + first_head) * HD;
  const float* cs = rotate ? cos_sin + static_cast<size_t>(row) * fresh.n_rot : nullptr;
  if (newest >= 0) {
    // Rotated and rounded as rope_store_kv would have stored them.
    const size_t at = (static_cast<size_t>(row) * (n_heads / rep) + kv_head) * HD;
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      fresh_rows[0][d] = __float2half_rn(rotated_element(fresh.k + at, d, fresh.n_rot, fresh.neox, cs));
      fresh_rows[1][d] = __float2half_rn(fresh.v[at + d]);
    }
  }
  for (int i = threadIdx.x; i < MAX_REP * HD; i += blockDim.x) {
    float x = 0.0f;
    if (i < group * HD) x = rotate ? rotated_element(qrow + i / HD * HD, i % HD, fresh.n_rot, fresh.neox, cs) : qrow[i];
    qs[i] = x * scale;
  }
  __syncthreads();
  if (newest >= 0) {
    tile.take_fresh(fresh_rows[0], fresh_rows[1], newest - t0, lane);
    // One block of the KV head stores the rows for the steps after this one.
    if (first_head % rep == 0) {
      const size_t at = slot_offset(g, table, newest) + head_offset;
      for (int d = threadIdx.x; d < HD; d += blockDim.x) {
        reinterpret_cast<__half*>(g.k + at)[d] = fresh_rows[0][d];
        reinterpret_cast<__half*>(g.v + at)[d] = fresh_rows[1][d];
      }
    }
  }

  float acc[MAX_REP][DPL];
  float running_max[MAX_REP], running_sum[MAX_REP];
#pragma unroll
  for (int r = 0; r < MAX_REP; ++r) {
    running_max[r] = -INFINITY, running_sum[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[r][i] = 0.0f;
  }

  while (t0 < key_end) {
    const int key = t0 + lane;
    const int tile_keys = min(32, key_end - t0);
    float score[MAX_REP];
#pragma unroll
    for (int r = 0; r < MAX_REP; ++r) score[r] = 0.0f;
    if (key < key_end) {
      constexpr int kChunk = kWide ? HD / 8 : 8;  // uint4 words of the key row at a time
      const auto* kh = reinterpret_cast<const uint4*>(g.k + slot + head_offset);
#pragma unroll
      for (int c0 = 0; c0 < HD / 8; c0 += kChunk) {
        uint4 kw[kChunk];
#pragma unroll
        for (int c = 0; c < kChunk; ++c) {
          if constexpr (kWide) kw[c] = tile.k[c0 + c];
          else kw[c] = kh[c0 + c];
        }
#pragma unroll
        for (int c = 0; c < kChunk; ++c) {
          const auto* h = reinterpret_cast<const __half2*>(&kw[c]);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float2 kf = __half22float2(h[i]);
            const int d = 8 * (c0 + c) + 2 * i;
#pragma unroll
            for (int r = 0; r < MAX_REP; ++r) {
              const float2 qv = *reinterpret_cast<const float2*>(qs + r * HD + d);
              score[r] = fmaf(qv.x, kf.x, fmaf(qv.y, kf.y, score[r]));
            }
          }
        }
      }
    }
    float p[MAX_REP];
#pragma unroll
    for (int r = 0; r < MAX_REP; ++r) {
      const float sr = key < key_end ? score[r] : -INFINITY;
      float tile_max = sr;
      for (int off = 16; off > 0; off /= 2) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, off));
      const float new_max = fmaxf(running_max[r], tile_max);
      const float correction = __expf(running_max[r] - new_max);
      p[r] = key < key_end ? __expf(sr - new_max) : 0.0f;
      float tile_sum = p[r];
      for (int off = 16; off > 0; off /= 2) tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, off);
      running_sum[r] = running_sum[r] * correction + tile_sum;
      running_max[r] = new_max;
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[r][i] *= correction;
    }

    for (int first = 0; first < tile_keys; first += kWide ? 32 : 8) {
      if (first > 0) tile.load_values(g, head_offset, slot, first, tile_keys, lane);
#pragma unroll
      for (int u = 0; u < (kWide ? 32 : 8); ++u) {
        float vf[DPL];
#pragma unroll
        for (int i = 0; i < DPL / 2; ++i) {
          const float2 f = __half22float2(tiles::bits_to_half2(tile.v[u][i]));
          vf[2 * i] = f.x, vf[2 * i + 1] = f.y;
        }
        const bool in_tile = first + u < tile_keys;
#pragma unroll
        for (int r = 0; r < MAX_REP; ++r) {
          const float pt = __shfl_sync(0xffffffffu, p[r], (first + u) & 31);
          const float w = in_tile ? pt : 0.0f;
#pragma unroll
          for (int i = 0; i < DPL; ++i) acc[r][i] = fmaf(w, vf[i], acc[r][i]);
        }
      }
    }
    t0 += 32 * kWarps;
    if (t0 < key_end) {
      slot = slot_of(t0);
      tile.load(g, head_offset, slot, t0 + lane < key_end, min(32, key_end - t0), lane);
      if (newest >= 0) tile.take_fresh(fresh_rows[0], fresh_rows[1], newest - t0, lane);
    }
  }

  // Merge the warps' states: each warp leaves (max, sum, unnormalized output) per head; a warp with no keys
  // leaves max -inf and sum 0 and gets no weight.
#pragma unroll
  for (int r = 0; r < MAX_REP; ++r) {
    if (lane == 0) {
      part_max[warp * MAX_REP + r] = running_max[r];
      part_sum[warp * MAX_REP + r] = running_sum[r];
    }
#pragma unroll
    for (int i = 0; i < DPL; ++i) part_acc[(warp * MAX_REP + r) * HD + DPL * lane + i] = acc[r][i];
  }
  __syncthreads();
  for (int r = warp; r < group; r += kWarps) {
    float m = -INFINITY;
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, part_max[w * MAX_REP + r]);
    float weight[kWarps], total = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      weight[w] = part_sum[w * MAX_REP + r] > 0.0f ? __expf(part_max[w * MAX_REP + r] - m) : 0.0f;
      total += part_sum[w * MAX_REP + r] * weight[w];
    }
    const int head = first_head + r;
    if (split.n_splits == 1) {
      float* o = out + (static_cast<size_t>(row) * n_heads + head) * HD;
      for (int d = lane; d < HD; d += 32) {
        float v = 0.0f;
        for (int w = 0; w < kWarps; ++w) v += part_acc[(w * MAX_REP + r) * HD + d] * weight[w];
        o[d] = v / total;
        if (out_f16 != nullptr) out_f16[(static_cast<size_t>(row) * n_heads + head) * HD + d] = __float2half_rn(o[d]);
      }
    } else {
      // A split past the row's context leaves max -inf and sum 0: the combine step gives it no weight.
      const size_t slot = (static_cast<size_t>(row) * n_heads + head) * split.n_splits + part;
      float* a = split.acc + slot * HD;
      for (int d = lane; d < HD; d += 32) {
        float v = 0.0f;
        for (int w = 0; w < kWarps; ++w) v += part_acc[(w * MAX_REP + r) * HD + d] * weight[w];
        a[d] = v;
      }
      if (lane == 0) {
        split.max[slot] = m;
        split.sum[slot] = total;
      }
    }
  }
}

// One block per (row, head), one thread per output dimension: the splits' softmax pieces rescaled to the
// overall max and added.
__global__ void combine_splits_kernel(SplitOutput split, int n_heads, int hd, float* __restrict__ out,
                                      __half* __restrict__ out_f16) {
  wait_for_prior_kernels();
  const int row = blockIdx.x, head = blockIdx.y, d = threadIdx.x;
  const size_t base = (static_cast<size_t>(row) * n_heads + head) * split.n_splits;
  float m = -INFINITY;
  for (int s = 0; s < split.n_splits; ++s) m = fmaxf(m, split.max[base + s]);
  float total = 0.0f, value = 0.0f;
  for (int s = 0; s < split.n_splits; ++s) {
    const float w = split.sum[base + s] > 0.0f ? __expf(split.max[base + s] - m) : 0.0f;
    total += split.sum[base + s] * w;
    if (d < hd) value += split.acc[(base + s) * hd + d] * w;
  }
  if (d < hd) {
    const size_t i = (static_cast<size_t>(row) * n_heads + head) * hd + d;
    out[i] = value / total;
    if (out_f16 != nullptr) out_f16[i] = __float2half_rn(out[i]);
  }
}

// An F16 cache with a head size of 64, 128 or 256 and up to 8 query heads a KV head.
bool takes_f16_kernel(const KvLayerView& kv, int n_heads) {
  return kv.element == KvElement::F16 && n_heads / kv.n_kv_heads <= 8 &&
         (kv.head_dim == 64 || kv.head_dim == 128 || kv.head_dim == 256);
}

template <typename Fn>
void dispatch_element(KvElement e, Fn&& fn) {
  switch (e) {
    case KvElement::F32: fn.template operator()<KvElement::F32>(); break;
    case KvElement::F16: fn.template operator()<KvElement::F16>(); break;
    case KvElement::Q8_0: fn.template operator()<KvElement::Q8_0>(); break;
  }
}

}  // namespace

void rope_store_kv(const KvLayerView& kv, float* q, int q_heads, float* k, const float* v, int n_rot, bool neox,
                   const StepUpload& step, cudaStream_t stream) {
  if (step.n_rows == 0) return;
  const RopeHeads heads{q, k, q_heads, kv.n_kv_heads, kv.head_dim, n_rot, neox};
  const dim3 grid(static_cast<unsigned>(step.n_rows), static_cast<unsigned>(q_heads + kv.n_kv_heads));
  const int threads = std::min(256, (kv.head_dim + 31) / 32 * 32);
  dispatch_element(kv.element, [&]<KvElement E>() {
    launch_overlapped(rope_store_kv_kernel<E>, grid, threads, 0, stream, geometry(kv), heads, v, step.rope,
                      step.positions, step.seq_of_row, step.table_start, step.blocks);
  });
}

void store_kv(const KvLayerView& kv, const float* k, const float* v, const StepUpload& step, cudaStream_t stream) {
  if (step.n_rows == 0) return;
  const int width = kv.n_kv_heads * kv.head_dim;
  dispatch_element(kv.element, [&]<KvElement E>() {
    const int per_row = E == KvElement::Q8_0 ? width / 32 : width;
    const int threads = per_row >= 256 ? 256 : (per_row + 31) / 32 * 32;
    store_kv_kernel<E><<<step.n_rows, threads, 0, stream>>>(geometry(kv), width, k, v, step.positions, step.seq_of_row,
                                                            step.table_start, step.blocks);
  });
}

bool attention_takes_fresh_kv(const KvLayerView& kv, int n_heads, int n_rows) {
  return takes_f16_kernel(kv, n_heads) && wide_f16_attention(kv.head_dim, n_rows);
}

int attention_splits(const KvLayerView& kv, int n_heads, int n_rows, int max_context, int multiprocessors) {
  // Enough blocks to fill the GPU several times over when few rows are decoding; a split has a 32-key tile at
  // least for each warp of a block (fewer splits: the second kernel that adds them up costs a launch).
  const int wanted_blocks = 8 * multiprocessors;
  const int by_occupancy = (wanted_blocks + n_rows * kv.n_kv_heads - 1) / (n_rows * kv.n_kv_heads);
  const int warps = takes_f16_kernel(kv, n_heads) ? f16_attention_warps(wide_f16_attention(kv.head_dim, n_rows)) : 4;
  const int by_length = (max_context + 32 * warps - 1) / (32 * warps);
  return std::max(1, std::min(by_occupancy, by_length));
}

size_t attention_split_floats(int n_rows, int n_heads, int head_dim, int n_splits) {
  return n_splits == 1 ? 0 : static_cast<size_t>(n_rows) * n_heads * n_splits * (head_dim + 2);
}

void attention(const float* q, int n_heads, const KvLayerView& kv, const StepUpload& step, float scale, float* out,
               uint16_t* out_f16, int n_splits, float* split_scratch, const FreshKv& fresh, cudaStream_t stream) {
  if (step.n_rows == 0) return;
  if (fresh.k != nullptr && !attention_takes_fresh_kv(kv, n_heads, step.n_rows)) {
    throw std::logic_error("attention given fresh keys for a shape that does not take them");
  }
  auto* h = reinterpret_cast<__half*>(out_f16);
  const int rep = n_heads / kv.n_kv_heads;
  SplitOutput split;
  split.n_splits = n_splits;
  if (n_splits > 1) {
    const size_t slots = static_cast<size_t>(step.n_rows) * n_heads * n_splits;
    split.acc = split_scratch;
    split.max = split_scratch + slots * kv.head_dim;
    split.sum = split.max + slots;
    const int tiles = (step.max_context + 31) / 32;
    split.split_keys = (tiles + n_splits - 1) / n_splits * 32;
  }
  const dim3 grid(static_cast<unsigned>(step.n_rows), static_cast<unsigned>(kv.n_kv_heads),
                  static_cast<unsigned>(n_splits));
  const size_t shared = static_cast<size_t>(rep) * kv.head_dim * sizeof(float);
  const auto launch_f16 = [&]<int HD>() {
    // A block takes MAX_REP query heads of one KV head (their group, or one head in the wide kernel).
    const auto launch_shaped = [&]<int MAX_REP, bool kWide>() {
      constexpr int kWarps = f16_attention_warps(kWide);
      const int group = std::min(MAX_REP, rep);
      const dim3 blocks(grid.x, static_cast<unsigned>(n_heads / group), grid.z);
      const size_t bytes = (static_cast<size_t>(MAX_REP) * HD * (1 + kWarps) + 2 * kWarps * MAX_REP) * sizeof(float);
      launch_overlapped(attention_f16_kernel<HD, MAX_REP, kWide>, blocks, kWarps * 32, bytes, stream, geometry(kv), q,
                        n_heads, rep, group, scale, step.positions, step.seq_of_row, step.table_start, step.blocks,
                        out, h, split, fresh, step.rope);
    };
    const auto launch = [&]<int MAX_REP>() {
      if constexpr (HD <= 128) {
        if (wide_f16_attention(HD, step.n_rows)) {
          if (step.max_context <= kOneHeadMaxContext) launch_shaped.template operator()<1, true>();
          else launch_shaped.template operator()<MAX_REP, true>();
          return;
        }
      }
      launch_shaped.template operator()<MAX_REP, false>();
    };
    if (rep == 1) launch.template operator()<1>();
    else if (rep == 2) launch.template operator()<2>();
    else if (rep <= 4) launch.template operator()<4>();
    else launch.template operator()<8>();
  };
  const bool f16_fast = takes_f16_kernel(kv, n_heads);
  if (f16_fast && kv.head_dim == 64) {
    launch_f16.template operator()<64>();
  } else if (f16_fast && kv.head_dim == 128) {
    launch_f16.template operator()<128>();
  } else if (f16_fast && kv.head_dim == 256) {
    launch_f16.template operator()<256>();
  } else {
    dispatch_element(kv.element, [&]<KvElement E>() {
      attention_kernel<E><<<grid, rep * 32, shared, stream>>>(geometry(kv), q, n_heads, rep, scale, step.positions,
                                                              step.seq_of_row, step.table_start, step.blocks, out,
                                                              h, split);
    });
  }
  if (n_splits > 1) {
    const dim3 heads(static_cast<unsigned>(step.n_rows), static_cast<unsigned>(n_heads));
    launch_overlapped(combine_splits_kernel, heads, (kv.head_dim + 31) / 32 * 32, 0, stream, split, n_heads,
                      kv.head_dim, out, h);
  }
}

}  // namespace pensieve::backend::cuda
