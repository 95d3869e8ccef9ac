#pragma once
// Launchers of the CUDA kernels, callable from plain C++ (the host-side orchestration in cuda_backend.cpp).
// Every launcher enqueues on `stream` and returns at once; pointers are device memory unless said otherwise.
// Each .cu file holds one family: quantized matrix products (matvec.cu), norms / RoPE / elementwise
// (elementwise.cu), the paged KV store and attention (attention.cu).
#include <cstddef>
#include <cstdint>
#include <span>

#include <cuda_runtime_api.h>

#include "backend/backend.h"

namespace pensieve::backend {

// The device copy of one step's tables (StepTables::uploaded on the CUDA backend).
struct StepUpload {
  const int32_t* tokens = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* seq_of_row = nullptr;
  const int32_t* logit_rows = nullptr;
  const int32_t* table_start = nullptr;  // per sequence: index of its first block in `blocks`
  const int32_t* blocks = nullptr;       // every sequence's block table, one after another
  const float* rope = nullptr;           // [n_rows][n_rot/2][2]
  int n_rows = 0;
  int max_context = 0;  // the longest attention span of any row (positions + 1)
  bool rows_own_sequences = false;  // a step of up to four rows, no two of one sequence (see cuda::FreshKv)
  bool logit_rows_all = false;      // logit_rows is 0 .. n_rows - 1
};

}  // namespace pensieve::backend

namespace pensieve::backend::cuda {

// True when the matvec kernels decode `type` (every GGML type the engine reads except the float ones,
// which go through cuBLAS).
bool matvec_supports(uint32_t type);
// y[j][rows] = x[j][cols] * W^T for j < n (n <= 8), W's rows `row_bytes` apart; x is f16 [n][cols]. Each
// decoded weight is rounded to f16 first, so the product is the same as the f16 GEMM path's up to the order
// of the sums (a sequence's result must not depend on which path its batch took).
// `repacked`: the copy repack_kquant made of w, or null.
void matvec(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, const uint16_t* x, int n,
            float* y, const void* repacked, cudaStream_t stream);
// The same for Q4_K and Q6_K through their own faster kernels (matvec_kquants.cu); false for other types.
bool matvec_kquant(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, const uint16_t* x,
                   int n, float* y, const void* repacked, cudaStream_t stream);
// Several products of the same x in one launch (a layer's Q, K and V): y_i[j][rows_i] = x[j][cols] * W_i^T
// for up to three matrices of `cols` columns and n <= 8, each Q4_K in its GGUF layout or Q6_K in the
// repacked one (repack_kquant; a Q4_K_M file's V has more bits than its Q and K on half the layers); false
// for other types and batches (nothing launched).
struct SameInputProduct {
  const void* w;
  int64_t rows;
  float* y;
  size_t row_bytes = 0;        // K-quant matrices: the stride of w's rows
  bool repacked_q6k = false;   // w is a Q6_K matrix's repacked copy (else Q4_K; F16 ignores both)
};
bool matvec_kquant_same_input(std::span<const SameInputProduct> products, int64_t cols, const uint16_t* x, int n,
                              cudaStream_t stream);
// The row stride of the layout matvec_kquant reads faster for `type` (Q6_K), 0 for types without one; and
// the copy of a matrix in that layout, rows * that stride bytes at `out`.
size_t kquant_repacked_row_bytes(uint32_t type, int64_t cols);
void repack_kquant(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, void* out,
                   cudaStream_t stream);
// The same for F16 weights and n <= 16 (matvec_f16.cu); false where cols is not a multiple of 32.
bool matvec_f16(const void* w, int64_t rows, int64_t cols, const uint16_t* x, int n, float* y, cudaStream_t stream);
// Up to three F16 products of the same x in one launch, as matvec_kquant_same_input (n <= 16).
bool matvec_f16_same_input(std::span<const SameInputProduct> products, int64_t cols, const uint16_t* x, int n,
                           cudaStream_t stream);
// gated_matvec_kquant for F16 matrices (n <= 8).
bool gated_matvec_f16(const void* w_gate, const void* w_up, int64_t rows, int64_t cols, const uint16_t* x, int n,
                      float* gate, uint16_t* gate_f16, cudaStream_t stream);
// gate[j][rows] = silu(x[j] * W_gate^T) * (x[j] * W_up^T), also in f16 into gate_f16, for Q4_K matrices of
// the same shape and n <= 8 (one launch for the two products of a gated feed-forward layer and their gate);
// false for other types and batches.
bool gated_matvec_kquant(uint32_t type, const void* w_gate, const void* w_up, size_t row_bytes, int64_t rows,
                         int64_t cols, const uint16_t* x, int n, float* gate, uint16_t* gate_f16,
                         cudaStream_t stream);
// The f16 copy of a Q4_K or Q6_K matrix, decoded exactly as matvec_kquant decodes it; false for other types.
bool dequantize_kquant_f16(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, uint16_t* out,
                           cudaStream_t stream);
// out[rows][cols] (f16) = W decoded (through dequantize_kquant_f16 for the types it takes).
void dequantize_f16(uint32_t type, const void* w, size_t row_bytes, int64_t rows, int64_t cols, uint16_t* out,
                    cudaStream_t stream);
// out[i][cols] = row tokens[i] of the table, decoded to float.
void embed(uint32_t type, const void* table, size_t row_bytes, int64_t cols, const int32_t* tokens, int n, float* out,
           cudaStream_t stream);

// Elementwise and row ops (elementwise.cu).
void to_f16(const float* x, size_t n, uint16_t* out, cudaStream_t stream);
void to_bf16(const float* x, size_t n, uint16_t* out, cudaStream_t stream);
// out = rmsnorm(x (+= residual, when given)) * gamma; also into out_f16 when given. out may alias x or residual.
void rmsnorm(float* x, const float* residual, const float* gamma, int n_rows, int dim, float eps, float* out,
             uint16_t* out_f16, cudaStream_t stream);
void rope(float* x, int n_rows, int n_heads, int head_dim, int n_rot, bool neox, const float* cos_sin,
          cudaStream_t stream);
void silu_mul(float* gate, const float* up, size_t n, uint16_t* out_f16, cudaStream_t stream);  // out_f16 optional
void add(float* x, const float* y, size_t n, cudaStream_t stream);
void add_rows(float* x, const float* bias, int n_rows, int dim, cudaStream_t stream);
void gather_rows(const float* x, int dim, const int32_t* rows, int n, float* out, cudaStream_t stream);

// out[r] = the head of row r of logits[n_rows][vocab] (top_logits.cu), with device scratch of
// top_logits_scratch_bytes.
size_t top_logits_scratch_bytes(int n_rows, int vocab);
void top_logits(const float* logits, int n_rows, int vocab, TopLogits* out, void* scratch, cudaStream_t stream);

// The paged KV cache (attention.cu).
void store_kv(const KvLayerView& kv, const float* k, const float* v, const StepUpload& step, cudaStream_t stream);
// RoPE on q [rows][q_heads][head_dim] and k (kv's KV heads), in place, then store_kv, in one launch.
void rope_store_kv(const KvLayerView& kv, float* q, int q_heads, float* k, const float* v, int n_rot, bool neox,
                   const StepUpload& step, cudaStream_t stream);
// A decoding step's keys and values as the Q/K/V products left them, neither rotated nor stored, for attention
// to take itself (the queries are then unrotated too): on one decoding row the RoPE + store kernel was a few
// microseconds a layer of pure latency. Only where attention_takes_fresh_kv, and only when every row is its
// sequence's only row in the step (a row would otherwise need a key of the same step from the cache).
struct FreshKv {
  const float* k = nullptr;  // [rows][kv heads][head_dim]; null: q is rotated and the keys are stored
  const float* v = nullptr;
  int n_rot = 0;
  bool neox = false;
};
bool attention_takes_fresh_kv(const KvLayerView& kv, int n_heads, int n_rows);
// How many blocks each row's keys are split across, and the scratch floats the splits need (0 for one split).
int attention_splits(const KvLayerView& kv, int n_heads, int n_rows, int max_context, int multiprocessors);
size_t attention_split_floats(int n_rows, int n_heads, int head_dim, int n_splits);
// out_f16 (optional): the output in f16 as well, for the product that reads it next. fresh.k set: see FreshKv.
void attention(const float* q, int n_heads, const KvLayerView& kv, const StepUpload& step, float scale, float* out,
               uint16_t* out_f16, int n_splits, float* split_scratch, const FreshKv& fresh, cudaStream_t stream);

}  // namespace pensieve::backend::cuda
