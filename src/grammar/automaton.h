#pragma once
// The grammar as a lazily built deterministic automaton over bytes. A matcher configuration is the set of
// parse stacks still alive (an Earley-like set of pushdown stacks); stacks are hash-consed as persistent
// lists of grammar positions, and every distinct set becomes one integer state. step(state, byte) is memoized
// in a dense table over byte classes (bytes no terminal tells apart share a class), so walking the token trie
// costs one array read per trie node once a state has been visited.
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"

namespace pensieve::grammar {

class Automaton {
 public:
  static constexpr int32_t kDead = 0;  // no stack left: the bytes so far are not a prefix of the language
  static constexpr size_t kMaxStates = 200'000;
  static constexpr size_t kMaxStackNodes = 1'000'000;

  explicit Automaton(Grammar g);

  int32_t start() const { return start_; }
  int32_t step(int32_t state, uint8_t byte) {
    const uint8_t c = byte_class_[byte];
    const int32_t t = transitions_[static_cast<size_t>(state) * n_classes_ + c];
    return t >= 0 ? t : compute(state, c);
  }
  int32_t step(int32_t state, std::string_view bytes) {
    for (char b : bytes) {
      if (state == kDead) break;
      state = step(state, static_cast<uint8_t>(b));
    }
    return state;
  }
  // The bytes so far form a complete sentence of the grammar.
  bool accepting(int32_t state) const { return !sets_[static_cast<size_t>(state)].empty() && sets_[static_cast<size_t>(state)][0] == 0; }
  // Complete, and no byte may follow.
  bool finished(int32_t state) const { return sets_[static_cast<size_t>(state)].size() == 1 && accepting(state); }
  size_t n_states() const { return sets_.size(); }
  int n_classes() const { return static_cast<int>(n_classes_); }

 private:
  struct Node {
    uint32_t pos;     // a Terminal or Rule symbol in grammar_.symbols
    uint32_t parent;  // node below it; 0 is the empty stack
  };
  struct SetHash {
    size_t operator()(const std::vector<uint32_t>& v) const;
  };

  uint32_t node(uint32_t pos, uint32_t parent);
  uint32_t continuation(uint32_t pos, uint32_t parent);  // `parent` itself when pos is an End
  void resolve(uint32_t start, std::vector<uint32_t>& out);
  int32_t intern(std::vector<uint32_t> set);
  int32_t compute(int32_t state, uint8_t cls);

  Grammar grammar_;
  uint8_t byte_class_[256] = {};
  uint8_t class_byte_[256] = {};  // one representative byte per class
  size_t n_classes_ = 0;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, uint32_t> node_ids_;
  std::vector<std::vector<uint32_t>> sets_;  // per state: sorted stack nodes whose top is a terminal (or 0)
  std::unordered_map<std::vector<uint32_t>, int32_t, SetHash> state_ids_;
  std::vector<int32_t> transitions_;  // state * n_classes + class -> state, -1 not computed yet
  int32_t start_ = kDead;
  // Scratch for resolve().
  std::vector<uint32_t> worklist_;
  std::vector<uint32_t> seen_;
  uint32_t seen_epoch_ = 0;
};

}  // namespace pensieve::grammar
