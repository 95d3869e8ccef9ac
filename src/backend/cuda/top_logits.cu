// The head of each logits row (TopLogits) found on the GPU, so a greedy or top-k sampler reads ~0.5 KB per
// sequence instead of the whole 128-152k-float row. The row was just written by the output product and sits
// in L2, so the few passes over it cost microseconds.
//
// The k-th largest logit is found by radix selection over order-preserving 32-bit keys (a byte per pass, top
// byte first), which needs no sorting of the row. Everything above it is taken; of the logits equal to it,
// the lowest ids (as the host's stable argmax would), which only needs ordered work in the rare case that more
// of them tie than are wanted (e.g. a model whose logits are all zero).
#include <cfloat>
#include <algorithm>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace pensieve::backend::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// A row is cut into chunks of about this many logits, each chunk's head found by its own block; a second
// kernel picks the row's head among the chunks' heads. (One block per row took ~90 us for a 128k vocabulary:
// one SM, and a histogram whose few busy bins serialized its atomics.)
constexpr int kChunkElements = 4096;
constexpr int kMaxChunks = 64;

// Larger float -> larger key; -0 and +0 are one key, as they compare equal on the host.
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t u = x == 0.0f ? 0u : __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// a ranks before b: larger logit, then lower id.
__device__ __forceinline__ bool ranks_before(uint32_t key_a, int32_t id_a, uint32_t key_b, int32_t id_b) {
  return key_a > key_b || (key_a == key_b && id_a < id_b);
}

// Running (max, sum of exp(x - max)) merged across lanes, so one pass gives the log-sum-exp.
__device__ __forceinline__ void merge_softmax(float& m, float& s, float m2, float s2) {
  const float top = fmaxf(m, m2);
  if (top == -INFINITY) return;
  s = s * __expf(m - top) + s2 * __expf(m2 - top);
  m = top;
}

struct SelectState {
  uint32_t prefix;  // the key bits fixed so far
  uint32_t mask;
  int want;         // how many keys with this prefix are still needed
  int tied;         // keys equal to the final prefix (known after the last pass)
};

// After hist[] holds this pass's byte counts among keys matching the prefix: warp 0 finds the byte where the
// count from the top reaches `want`, and narrows the state to it.
__device__ void narrow(const unsigned* hist, int shift, SelectState& st) {
  const int lane = threadIdx.x & 31;
  // Lane l holds bytes 255 - 8l down to 248 - 8l.
  unsigned lane_sum = 0;
  for (int j = 0; j < 8; ++j) lane_sum += hist[255 - 8 * lane - j];
  unsigned inclusive = lane_sum;
  for (int d = 1; d < 32; d <<= 1) {
    const unsigned up = __shfl_up_sync(0xffffffffu, inclusive, d);
    if (lane >= d) inclusive += up;
  }
  const unsigned reached = __ballot_sync(0xffffffffu, inclusive >= static_cast<unsigned>(st.want));
  if (lane != __ffs(reached) - 1) return;
  unsigned acc = inclusive - lane_sum;
  for (int j = 0; j < 8; ++j) {
    const int b = 255 - 8 * lane - j;
    if (acc + hist[b] >= static_cast<unsigned>(st.want)) {
      st.want -= static_cast<int>(acc);
      st.tied = static_cast<int>(hist[b]);
      st.prefix |= static_cast<uint32_t>(b) << shift;
      st.mask |= 0xffu << shift;
      return;
    }
    acc += hist[b];
  }
}

struct SelectShared {
  unsigned hist[256];
  SelectState st;
  unsigned warp_count[kWarps];
  int n_taken, tied_base;
  uint32_t key[kTopLogits];
  int32_t id[kTopLogits];
};

// Counts, per byte at `shift`, the keys that match the state's prefix; a warp's lanes that share a byte add
// it with one atomic (logits crowd into a few top bytes).
template <typename KeyAt>
__device__ void histogram(int count, KeyAt key_at, int shift, SelectShared& sh) {
  const int tid = threadIdx.x, lane = tid & 31;
  if (tid < 256) sh.hist[tid] = 0;
  __syncthreads();
  const uint32_t prefix = sh.st.prefix, mask = sh.st.mask;
  for (int base = 0; base < count; base += kThreads) {
    const int i = base + tid;
    const uint32_t key = i < count ? key_at(i) : 0u;
    const unsigned bin = i < count && (key & mask) == prefix ? (key >> shift) & 0xffu : 256u;  // 256: none
    const unsigned peers = __match_any_sync(0xffffffffu, bin);
    if (bin != 256u && lane == __ffs(peers) - 1) atomicAdd(&sh.hist[bin], static_cast<unsigned>(__popc(peers)));
  }
  __syncthreads();
}

// The best k of `count` keys (larger first, then lower id; ids must grow with i) into sh.key / sh.id, in no
// particular order. Radix selection finds the k-th key; every larger key is taken, and of the keys equal to
// it the lowest ids.
template <typename KeyAt, typename IdAt>
__device__ void select_best(int count, int k, KeyAt key_at, IdAt id_at, SelectShared& sh) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  if (tid == 0) {
    sh.st = {0u, 0u, k, 0};
    sh.n_taken = 0;
    sh.tied_base = 0;
  }
  __syncthreads();
  for (int shift = 24; shift >= 0; shift -= 8) {
    histogram(count, key_at, shift, sh);
    if (warp == 0) narrow(sh.hist, shift, sh.st);
    __syncthreads();
  }
  const uint32_t kth = sh.st.prefix;
  const int want = sh.st.want;
  const bool take_all_tied = sh.st.tied == want;
  for (int i = tid; i < count; i += kThreads) {
    const uint32_t key = key_at(i);
    if (key > kth || (take_all_tied && key == kth)) {
      const int slot = atomicAdd(&sh.n_taken, 1);
      sh.key[slot] = key;
      sh.id[slot] = id_at(i);
    }
  }
  __syncthreads();
  if (take_all_tied) return;
  // More ties than wanted: the lowest ids, found tile by tile in id order.
  const int first_tied_slot = k - want;
  for (int base = 0; base < count; base += kThreads) {
    if (sh.tied_base >= want) break;  // uniform: read after the barrier that ended the last tile
    const int i = base + tid;
    const bool tied = i < count && key_at(i) == kth;
    const unsigned ballot = __ballot_sync(0xffffffffu, tied);
    if (lane == 0) sh.warp_count[warp] = __popc(ballot);
    __syncthreads();
    int rank = sh.tied_base + __popc(ballot & ((1u << lane) - 1u));
    for (int w = 0; w < warp; ++w) rank += static_cast<int>(sh.warp_count[w]);
    if (tied && rank < want) {
      sh.key[first_tied_slot + rank] = kth;
      sh.id[first_tied_slot + rank] = id_at(i);
    }
    __syncthreads();
    if (tid == 0) {
      unsigned total = 0;
      for (int w = 0; w < kWarps; ++w) total += sh.warp_count[w];
      sh.tied_base += static_cast<int>(total);
    }
    __syncthreads();
  }
  __syncthreads();
}

// Each chunk's head, kept in id order (so that the second pass can break ties by position), and its
// softmax pieces. Grid: (chunk, row).
__global__ void __launch_bounds__(kThreads)
    chunk_heads_kernel(const float* __restrict__ logits, int vocab, int n_chunks, int k, uint32_t* __restrict__ keys,
                       int32_t* __restrict__ ids, float2* __restrict__ softmax) {
  __shared__ SelectShared sh;
  __shared__ float warp_max[kWarps], warp_sum[kWarps];
  const int chunk = blockIdx.x, row_index = blockIdx.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int per_chunk = vocab / n_chunks;
  const int begin = chunk * per_chunk;
  const int count = chunk == n_chunks - 1 ? vocab - begin : per_chunk;
  const float* row = logits + static_cast<size_t>(row_index) * static_cast<size_t>(vocab) + begin;

  float m = -INFINITY, s = 0.0f;
  for (int i = tid; i < count; i += kThreads) merge_softmax(m, s, row[i], 1.0f);
  for (int d = 16; d > 0; d >>= 1) merge_softmax(m, s, __shfl_xor_sync(0xffffffffu, m, d), __shfl_xor_sync(0xffffffffu, s, d));
  if (lane == 0) {
    warp_max[warp] = m;
    warp_sum[warp] = s;
  }

  select_best(count, k, [&](int i) { return order_key(row[i]); }, [&](int i) { return begin + i; }, sh);

  const size_t out = (static_cast<size_t>(row_index) * n_chunks + chunk) * static_cast<size_t>(k);
  if (tid < k) {
    int pos = 0;
    for (int j = 0; j < k; ++j) pos += sh.id[j] < sh.id[tid] ? 1 : 0;
    keys[out + pos] = sh.key[tid];
    ids[out + pos] = sh.id[tid];
  }
  if (tid == 0) {
    float bm = -INFINITY, bs = 0.0f;
    for (int w = 0; w < kWarps; ++w) merge_softmax(bm, bs, warp_max[w], warp_sum[w]);
    softmax[static_cast<size_t>(row_index) * n_chunks + chunk] = make_float2(bm, bs);
  }
}

// The row's head among its chunks' heads (which lie in id order, chunk after chunk), ranked best first.
__global__ void __launch_bounds__(kThreads)
    row_heads_kernel(const float* __restrict__ logits, int vocab, int n_chunks, int k, const uint32_t* __restrict__ keys,
                     const int32_t* __restrict__ ids, const float2* __restrict__ softmax, TopLogits* __restrict__ out) {
  __shared__ SelectShared sh;
  const int row_index = blockIdx.x, tid = threadIdx.x;
  const size_t base = static_cast<size_t>(row_index) * n_chunks * static_cast<size_t>(k);
  const int count = n_chunks * k;
  select_best(count, k, [&](int i) { return keys[base + i]; }, [&](int i) { return ids[base + i]; }, sh);

  TopLogits& o = out[row_index];
  const float* row = logits + static_cast<size_t>(row_index) * static_cast<size_t>(vocab);
  if (tid < k) {
    int rank = 0;
    for (int j = 0; j < k; ++j) rank += ranks_before(sh.key[j], sh.id[j], sh.key[tid], sh.id[tid]) ? 1 : 0;
    o.ids[rank] = sh.id[tid];
    o.logits[rank] = row[sh.id[tid]];
  }
  if (tid == 0) {
    float bm = -INFINITY, bs = 0.0f;
    for (int c = 0; c < n_chunks; ++c) {
      const float2 p = softmax[static_cast<size_t>(row_index) * n_chunks + c];
      merge_softmax(bm, bs, p.x, p.y);
    }
    o.log_sum_exp = bm + logf(bs);
    o.count = k;
  }
}

int chunks_for(int vocab) {
  // Every chunk holds at least kTopLogits logits, so the heads together hold the row's head.
  const int by_size = (vocab + kChunkElements - 1) / kChunkElements;
  return std::max(1, std::min({by_size, kMaxChunks, vocab / kTopLogits}));
}

}  // namespace

size_t top_logits_scratch_bytes(int n_rows, int vocab) {
  const size_t heads = static_cast<size_t>(n_rows) * chunks_for(vocab);
  return heads * (kTopLogits * (sizeof(uint32_t) + sizeof(int32_t)) + sizeof(float2));
}

void top_logits(const float* logits, int n_rows, int vocab, TopLogits* out, void* scratch, cudaStream_t stream) {
  if (n_rows <= 0 || vocab <= 0) return;
  const int n_chunks = chunks_for(vocab);
  const int k = std::min(vocab, kTopLogits);
  const size_t heads = static_cast<size_t>(n_rows) * n_chunks;
  auto* keys = static_cast<uint32_t*>(scratch);
  auto* ids = reinterpret_cast<int32_t*>(keys + heads * kTopLogits);
  auto* softmax = reinterpret_cast<float2*>(ids + heads * kTopLogits);
  chunk_heads_kernel<<<dim3(static_cast<unsigned>(n_chunks), static_cast<unsigned>(n_rows)), kThreads, 0, stream>>>(
      logits, vocab, n_chunks, k, keys, ids, softmax);
  row_heads_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(logits, vocab, n_chunks, k, keys, ids,
                                                                            softmax, out);
}

}  // namespace pensieve::backend::cuda
