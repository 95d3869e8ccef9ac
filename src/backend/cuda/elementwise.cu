// RMSNorm, RoPE, SiLU-gate, residual adds, row gathers and f32 -> f16/bf16 conversion: each a single pass
// over its rows, one thread per element (or per rotated pair), one block per row for the reductions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "backend/cuda/kernels.h"
#include "backend/cuda/overlapped_launch.cuh"
#include "backend/cuda/silu_gate.cuh"
#include "backend/rope_pair.h"

namespace pensieve::backend::cuda {
namespace {

unsigned grid_for(size_t threads, int block) { return static_cast<unsigned>((threads + block - 1) / block); }

__global__ void to_f16_kernel(const float* __restrict__ x, size_t n, __half* __restrict__ out) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2half_rn(x[i]);
}

__global__ void to_bf16_kernel(const float* __restrict__ x, size_t n, __nv_bfloat16* __restrict__ out) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16_rn(x[i]);
}

// The sum of every thread's v, in every thread of the block.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float p = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    for (int off = 16; off > 0; off /= 2) p += __shfl_xor_sync(0xffffffffu, p, off);
    if (threadIdx.x == 0) partial[0] = p;
  }
  __syncthreads();
  return partial[0];
}

// One block per row; the sum of squares in float (the CPU sums in double: both well inside the tests' bounds).
// With `residual`, x += residual first (written back: the residual stream's add, fused here to save a pass);
// with `out_f16`, the result also in f16 for the product that reads it next. out may alias x or residual:
// each thread reads its own elements before it writes them.
// Each thread holds K elements (K * blockDim >= dim) in registers from the first load to the last store: x, the
// residual and gamma are all requested before anything waits on them, and nothing is read twice. At one
// decode row the kernel is all latency, and the two reads of the row that a strided loop makes cost as much
// as the rest.
// (Bounded to 1024 threads: without it the compiler gave K = 16 and 32 more registers than a block of 1024
// threads may have, and rows of 8193 to 32768 elements failed to launch; now those spill instead.)
template <int K>
__global__ void __launch_bounds__(1024)
    rmsnorm_kernel(float* x, const float* residual, const float* __restrict__ gamma, int dim, float eps, float* out,
                   __half* __restrict__ out_f16) {
  const size_t base = static_cast<size_t>(blockIdx.x) * dim;
  float* xr = x + base;
  float v[K], g[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    g[k] = i < dim ? gamma[i] : 0.0f;
  }
  wait_for_prior_kernels();  // gamma is a weight; x and the residual are the kernels before's output
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    v[k] = 0.0f;
    if (i < dim) {
      v[k] = xr[i];
      if (residual != nullptr) v[k] += residual[base + i];
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    if (residual != nullptr && i < dim) xr[i] = v[k];
    ss = fmaf(v[k], v[k], ss);
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(dim) + eps);
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    if (i >= dim) continue;
    const float o = v[k] * inv * g[k];
    out[base + i] = o;
    if (out_f16 != nullptr) out_f16[base + i] = __float2half_rn(o);
  }
}

// The same for rows whose length is a multiple of four and buffers 16-byte aligned (the usual case): a thread
// holds K runs of four neighbouring elements, moved with 16-byte loads and stores, so a row of 4096 takes 256
// threads where the kernel above takes 1024, and the block's sum crosses 8 warps instead of 32.
template <int K>
__global__ void rmsnorm4_kernel(float* x, const float* residual, const float* __restrict__ gamma, int dim, float eps,
                                float* out, __half* __restrict__ out_f16) {
  const size_t base = static_cast<size_t>(blockIdx.x) * dim;
  const int runs = dim / 4;
  auto* xr = reinterpret_cast<float4*>(x + base);
  float4 v[K], g[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    g[k] = i < runs ? reinterpret_cast<const float4*>(gamma)[i] : make_float4(0, 0, 0, 0);
  }
  wait_for_prior_kernels();  // gamma is a weight; x and the residual are the kernels before's output
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    v[k] = make_float4(0, 0, 0, 0);
    if (i < runs) {
      v[k] = xr[i];
      if (residual != nullptr) {
        const float4 r = reinterpret_cast<const float4*>(residual + base)[i];
        v[k].x += r.x, v[k].y += r.y, v[k].z += r.z, v[k].w += r.w;
      }
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    if (residual != nullptr && i < runs) xr[i] = v[k];
    ss = fmaf(v[k].x, v[k].x, fmaf(v[k].y, v[k].y, fmaf(v[k].z, v[k].z, fmaf(v[k].w, v[k].w, ss))));
  }
  const float inv = rsqrtf(block_sum(ss) / static_cast<float>(dim) + eps);
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int i = static_cast<int>(threadIdx.x) + k * static_cast<int>(blockDim.x);
    if (i >= runs) continue;
    const float4 o = make_float4(v[k].x * inv * g[k].x, v[k].y * inv * g[k].y, v[k].z * inv * g[k].z,
                                 v[k].w * inv * g[k].w);
    reinterpret_cast<float4*>(out + base)[i] = o;
    if (out_f16 != nullptr) {
      const __half2 lo = __floats2half2_rn(o.x, o.y), hi = __floats2half2_rn(o.z, o.w);
      uint2 bits;
      memcpy(&bits.x, &lo, 4);
      memcpy(&bits.y, &hi, 4);
      reinterpret_cast<uint2*>(out_f16 + base)[i] = bits;
    }
  }
}

__global__ void rope_kernel(float* __restrict__ x, int n_rows, int n_heads, int head_dim, int n_rot, bool neox,
                            const float* __restrict__ cos_sin) {
  const int half = n_rot / 2;
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n_rows) * n_heads * half) return;
  const int i = static_cast<int>(idx % half);
  const size_t head = idx / half;  // row * n_heads + h
  const size_t row = head / n_heads;
  rotate_pair(x + head * head_dim, i, n_rot, neox, cos_sin + row * n_rot);
}

__global__ void silu_mul_kernel(float* __restrict__ gate, const float* __restrict__ up, size_t n,
                                __half* __restrict__ out_f16) {
  wait_for_prior_kernels();
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = silu_gate(gate[i], up[i]);
  gate[i] = v;
  if (out_f16 != nullptr) out_f16[i] = __float2half_rn(v);
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, size_t n) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void add_rows_kernel(float* __restrict__ x, const float* __restrict__ bias, size_t n, int dim) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += bias[i % dim];
}

__global__ void gather_rows_kernel(const float* __restrict__ x, int dim, const int32_t* __restrict__ rows, int n,
                                   float* __restrict__ out) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<size_t>(n) * dim) return;
  const size_t r = i / dim;
  out[i] = x[static_cast<size_t>(rows[r]) * dim + i % dim];
}

}  // namespace

void to_f16(const float* x, size_t n, uint16_t* out, cudaStream_t stream) {
  if (n) to_f16_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, n, reinterpret_cast<__half*>(out));
}

void to_bf16(const float* x, size_t n, uint16_t* out, cudaStream_t stream) {
  if (n) to_bf16_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, n, reinterpret_cast<__nv_bfloat16*>(out));
}

// Calls launch<K>() with the smallest power of two K >= per_thread, up to kMax; false where none is.
template <int kMax, int K = 1, typename Launch>
bool with_per_thread(int per_thread, Launch&& launch) {
  if (per_thread <= K) {
    launch.template operator()<K>();
    return true;
  }
  if constexpr (K < kMax) {
    return with_per_thread<kMax, 2 * K>(per_thread, launch);
  } else {
    return false;
  }
}

void rmsnorm(float* x, const float* residual, const float* gamma, int n_rows, int dim, float eps, float* out,
             uint16_t* out_f16, cudaStream_t stream) {
  if (n_rows <= 0) return;
  auto* h = reinterpret_cast<__half*>(out_f16);
  const auto aligned = [](const void* p, uintptr_t to) { return reinterpret_cast<uintptr_t>(p) % to == 0; };
  if (dim % 4 == 0 && aligned(x, 16) && aligned(residual, 16) && aligned(gamma, 16) && aligned(out, 16) &&
      aligned(h, 8)) {
    const int runs = dim / 4;
    const int threads = runs >= 256 ? 256 : (runs + 31) / 32 * 32;
    const bool launched = with_per_thread<16>((runs + threads - 1) / threads, [&]<int K>() {
      launch_overlapped(rmsnorm4_kernel<K>, n_rows, threads, 0, stream, x, residual, gamma, dim, eps, out, h);
    });
    if (launched) return;
  }
  const int threads = dim >= 1024 ? 1024 : (dim + 31) / 32 * 32;
  const bool launched = with_per_thread<32>((dim + threads - 1) / threads, [&]<int K>() {
    launch_overlapped(rmsnorm_kernel<K>, n_rows, threads, 0, stream, x, residual, gamma, dim, eps, out, h);
  });
  if (!launched) throw std::invalid_argument("rmsnorm: rows of more than 32768 elements");
}

void rope(float* x, int n_rows, int n_heads, int head_dim, int n_rot, bool neox, const float* cos_sin,
          cudaStream_t stream) {
  const size_t pairs = static_cast<size_t>(n_rows) * n_heads * (n_rot / 2);
  if (pairs) rope_kernel<<<grid_for(pairs, 256), 256, 0, stream>>>(x, n_rows, n_heads, head_dim, n_rot, neox, cos_sin);
}

void silu_mul(float* gate, const float* up, size_t n, uint16_t* out_f16, cudaStream_t stream) {
  if (n) launch_overlapped(silu_mul_kernel, grid_for(n, 256), 256, 0, stream, gate, up, n, reinterpret_cast<__half*>(out_f16));
}

void add(float* x, const float* y, size_t n, cudaStream_t stream) {
  if (n) add_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, y, n);
}

void add_rows(float* x, const float* bias, int n_rows, int dim, cudaStream_t stream) {
  const size_t n = static_cast<size_t>(n_rows) * dim;
  if (n) add_rows_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, bias, n, dim);
}

void gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out, cudaStream_t stream) {
  const size_t total = static_cast<size_t>(n) * dim;
  if (total) gather_rows_kernel<<<grid_for(total, 256), 256, 0, stream>>>(x, dim, rows, n, out);
}

}  // namespace pensieve::backend::cuda
