#pragma once
// This machine's streaming read bandwidth, the ceiling of memory-bound decode: tokens/s at batch B is at most
// B x bandwidth / bytes read per step.
namespace pensieve::backend {

// Bytes per second read by `threads` threads streaming over a buffer much larger than the caches (best of a
// few passes). Takes a fraction of a second.
double measure_read_bandwidth(int threads);

}  // namespace pensieve::backend
