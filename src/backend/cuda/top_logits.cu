// The head of each logits row (TopLogits) found on the GPU, so a greedy or top-k sampler reads ~0.5 KB per
// sequence instead of the whole 128-152k-float row. One block per row: the row was just written by the
// output product and sits in L2, so the few passes over it cost microseconds.
//
// The k-th largest logit is found by radix selection over order-preserving 32-bit keys (a byte per pass, top
// byte first), which needs no sorting of the row. Everything above it is taken; of the logits equal to it,
// the lowest ids (as the host's stable argmax would), which only needs ordered work in the rare case that more
// of them tie than are wanted (e.g. a model whose logits are all zero).
#include <cfloat>
#include <cstdint>

#include "backend/cuda/kernels.h"

namespace pensieve::backend::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

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

__global__ void __launch_bounds__(kThreads) top_logits_kernel(const float* logits, int vocab, TopLogits* out) {
  const float* row = logits + static_cast<size_t>(blockIdx.x) * static_cast<size_t>(vocab);
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int k = min(vocab, kTopLogits);

  __shared__ unsigned hist[256];
  __shared__ SelectState st;
  __shared__ float warp_max[kWarps], warp_sum[kWarps];
  __shared__ unsigned warp_count[kWarps];
  __shared__ int n_taken, tied_base;
  __shared__ uint32_t cand_key[kTopLogits];
  __shared__ int32_t cand_id[kTopLogits];

  if (tid < 256) hist[tid] = 0;
  if (tid == 0) {
    st = {0u, 0u, k, 0};
    n_taken = 0;
    tied_base = 0;
  }
  __syncthreads();

  // Pass 1: the softmax normalizer and the top byte's histogram together.
  float m = -INFINITY, s = 0.0f;
  for (int i = tid; i < vocab; i += kThreads) {
    const float x = row[i];
    merge_softmax(m, s, x, 1.0f);
    atomicAdd(&hist[order_key(x) >> 24], 1u);
  }
  for (int d = 16; d > 0; d >>= 1) merge_softmax(m, s, __shfl_xor_sync(0xffffffffu, m, d), __shfl_xor_sync(0xffffffffu, s, d));
  if (lane == 0) {
    warp_max[warp] = m;
    warp_sum[warp] = s;
  }
  __syncthreads();
  if (warp == 0) narrow(hist, 24, st);
  __syncthreads();

  for (int shift = 16; shift >= 0; shift -= 8) {
    if (tid < 256) hist[tid] = 0;
    __syncthreads();
    const uint32_t prefix = st.prefix, mask = st.mask;
    for (int i = tid; i < vocab; i += kThreads) {
      const uint32_t key = order_key(row[i]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (warp == 0) narrow(hist, shift, st);
    __syncthreads();
  }

  // st.prefix is now the k-th largest key: take every larger key, and `want` of the keys equal to it.
  const uint32_t kth = st.prefix;
  const int want = st.want;
  const bool take_all_tied = st.tied == want;
  for (int i = tid; i < vocab; i += kThreads) {
    const uint32_t key = order_key(row[i]);
    if (key > kth || (take_all_tied && key == kth)) {
      const int slot = atomicAdd(&n_taken, 1);
      cand_key[slot] = key;
      cand_id[slot] = i;
    }
  }
  __syncthreads();
  if (!take_all_tied) {
    // More ties than wanted: the lowest ids, found tile by tile in id order.
    const int first_tied_slot = k - want;
    for (int base = 0; base < vocab; base += kThreads) {
      if (tied_base >= want) break;  // uniform: read after the barrier that ended the last tile
      const int i = base + tid;
      const bool tied = i < vocab && order_key(row[i]) == kth;
      const unsigned ballot = __ballot_sync(0xffffffffu, tied);
      if (lane == 0) warp_count[warp] = __popc(ballot);
      __syncthreads();
      int rank = tied_base + __popc(ballot & ((1u << lane) - 1u));
      for (int w = 0; w < warp; ++w) rank += static_cast<int>(warp_count[w]);
      if (tied && rank < want) {
        cand_key[first_tied_slot + rank] = kth;
        cand_id[first_tied_slot + rank] = i;
      }
      __syncthreads();
      if (tid == 0) {
        unsigned total = 0;
        for (int w = 0; w < kWarps; ++w) total += warp_count[w];
        tied_base += static_cast<int>(total);
      }
      __syncthreads();
    }
  }
  __syncthreads();

  TopLogits& o = out[blockIdx.x];
  if (tid < k) {
    const uint32_t key = cand_key[tid];
    const int32_t id = cand_id[tid];
    int rank = 0;
    for (int j = 0; j < k; ++j) rank += ranks_before(cand_key[j], cand_id[j], key, id) ? 1 : 0;
    o.ids[rank] = id;
    o.logits[rank] = row[id];
  }
  if (tid == 0) {
    float bm = -INFINITY, bs = 0.0f;
    for (int w = 0; w < kWarps; ++w) merge_softmax(bm, bs, warp_max[w], warp_sum[w]);
    o.log_sum_exp = bm + logf(bs);
    o.count = k;
  }
}

}  // namespace

void top_logits(const float* logits, int n_rows, int vocab, TopLogits* out, cudaStream_t stream) {
  if (n_rows <= 0 || vocab <= 0) return;
  top_logits_kernel<<<n_rows, kThreads, 0, stream>>>(logits, vocab, out);
}

}  // namespace pensieve::backend::cuda
