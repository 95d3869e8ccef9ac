#pragma once
// Ops the CUDA backend holds back for one call, so that the kernel of the op that comes next can do them too:
// at one decoding stream a step is a chain of a few hundred kernels, each a few microseconds of mostly
// latency, and every one folded away is worth its whole length.
//
// - a residual add, done by the next RMSNorm of the same rows (its kernel adds, writes the sum, normalizes);
// - the RoPE of the queries and then the keys, done with the KV store that follows (rope_store_kv), or, at a
//   decoding step that attention_takes_fresh_kv, by attention itself (FreshKv);
// - a gather of every row in order (a decoding step's final rows), read in place by the final norm.
//
// Whatever the next op is, the backend asks the records below first; an op that does not take a held-back
// one has it launched plainly before its own kernel (flush_all before anything else reads device memory).
#include <array>
#include <cstddef>
#include <utility>

#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace pensieve::backend::cuda {

class HeldBackOps {
 public:
  struct Add {  // x += y, n floats
    float* x = nullptr;
    const float* y = nullptr;
    size_t n = 0;
  };
  struct Rope {
    float* x = nullptr;
    int n_heads = 0, head_dim = 0, n_rot = 0;
    bool neox = false;
    int n_rows = 0;
    const float* cos_sin = nullptr;
  };
  // Queries and keys left unrotated, and keys and values unstored, for the attention over q.
  struct Fresh {
    float* q = nullptr;
    int q_heads = 0;
    const float* k = nullptr;
    const float* v = nullptr;
    int n_rot = 0;
    bool neox = false;
    KvLayerView kv;
  };
  struct Gather {  // every row of x, in order, into out
    const float* x = nullptr;
    float* out = nullptr;
    int dim = 0;
    size_t elems = 0;
  };
  static constexpr int kMaxRopes = 2;

  Add add;
  std::array<Rope, kMaxRopes> ropes{};
  int n_ropes = 0;
  Fresh fresh;
  Gather gather;

  void hold_rope(const Rope& r, cudaStream_t stream) {
    if (n_ropes == kMaxRopes) flush_ropes(stream);
    ropes[static_cast<size_t>(n_ropes++)] = r;
  }

  void flush_add(cudaStream_t stream) {
    if (add.x == nullptr) return;
    const Add a = std::exchange(add, {});
    cuda::add(a.x, a.y, a.n, stream);
    check_launch("add");
  }
  void flush_ropes(cudaStream_t stream) {
    for (int i = 0; i < n_ropes; ++i) {
      const Rope& r = ropes[static_cast<size_t>(i)];
      cuda::rope(r.x, r.n_rows, r.n_heads, r.head_dim, r.n_rot, r.neox, r.cos_sin, stream);
      check_launch("rope");
    }
    n_ropes = 0;
  }
  void flush_fresh(const StepUpload& step, cudaStream_t stream) {
    if (fresh.q == nullptr) return;
    const Fresh f = std::exchange(fresh, {});
    rope_store_kv(f.kv, f.q, f.q_heads, const_cast<float*>(f.k), f.v, f.n_rot, f.neox, step, stream);
    check_launch("rope + store_kv");
  }
  void flush_gather(const StepUpload& step, cudaStream_t stream) {
    if (gather.x == nullptr) return;
    const Gather g = std::exchange(gather, {});
    gather_rows(g.x, g.dim, step.logit_rows, step.n_rows, g.out, stream);
    check_launch("gather_rows");
  }
  // In the order the model issued them: the add's sum is what the ropes, attention and the gather read.
  void flush_all(const StepUpload& step, cudaStream_t stream) {
    flush_add(stream);
    flush_ropes(stream);
    flush_fresh(step, stream);
    flush_gather(step, stream);
  }
  // A step given up on: nothing of it is launched.
  void drop() {
    add = {};
    n_ropes = 0;
    fresh = {};
    gather = {};
  }
};

}  // namespace pensieve::backend::cuda
