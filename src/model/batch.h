#pragma once
// One forward step's input: tokens of any number of sequences, each at its own position. Prefill (many
// consecutive positions of one sequence) and decode (one position each of many) are the same shape.
#include <cstdint>
#include <span>
#include <vector>

namespace pensieve::model {

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int32_t> seq_of_row;                    // index into block_tables
  std::vector<std::span<const int32_t>> block_tables;  // per sequence; must cover every position used
  std::vector<int32_t> logit_rows;                    // rows whose logits forward() returns, in this order

  void clear() {
    tokens.clear();
    positions.clear();
    seq_of_row.clear();
    block_tables.clear();
    logit_rows.clear();
  }
  int add_sequence(std::span<const int32_t> block_table) {
    block_tables.push_back(block_table);
    return static_cast<int>(block_tables.size()) - 1;
  }
  void add_token(int32_t token, int32_t position, int seq, bool want_logits) {
    if (want_logits) logit_rows.push_back(static_cast<int32_t>(tokens.size()));
    tokens.push_back(token);
    positions.push_back(position);
    seq_of_row.push_back(seq);
  }
  int size() const { return static_cast<int>(tokens.size()); }
};

}  // namespace pensieve::model
