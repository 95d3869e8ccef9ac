#include "grammar/automaton.h"

#include <algorithm>
#include <map>

#include "grammar/grammar_error.h"

namespace pensieve::grammar {

size_t Automaton::SetHash::operator()(const std::vector<uint32_t>& v) const {
  uint64_t h = 0xcbf29ce484222325ULL ^ v.size();
  for (uint32_t x : v) h = (h ^ x) * 0x100000001b3ULL;
  return static_cast<size_t>(h ^ (h >> 29));
}

Automaton::Automaton(Grammar g) : grammar_(std::move(g)) {
  // Byte classes: refine the partition of 0..255 by every terminal's set.
  std::vector<uint16_t> cls(256, 0);
  size_t n = 1;
  for (const ByteSet& set : grammar_.sets) {
    std::map<std::pair<uint16_t, bool>, uint16_t> renumber;
    for (int b = 0; b < 256; ++b) {
      const auto key = std::make_pair(cls[static_cast<size_t>(b)], static_cast<bool>(set[static_cast<size_t>(b)]));
      cls[static_cast<size_t>(b)] = renumber.emplace(key, static_cast<uint16_t>(renumber.size())).first->second;
    }
    n = renumber.size();
  }
  n_classes_ = n;
  for (int b = 255; b >= 0; --b) {
    byte_class_[b] = static_cast<uint8_t>(cls[static_cast<size_t>(b)]);
    class_byte_[cls[static_cast<size_t>(b)]] = static_cast<uint8_t>(b);
  }

  nodes_.push_back({0, 0});  // the empty stack
  intern({});                // state 0: dead
  std::vector<uint32_t> set;
  const uint32_t root_node = 0;
  for (uint32_t alt : grammar_.rules[grammar_.root].alternatives) {
    const uint32_t start = continuation(alt, root_node);
    std::vector<uint32_t> part;
    resolve(start, part);
    set.insert(set.end(), part.begin(), part.end());
  }
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  start_ = intern(std::move(set));
}

uint32_t Automaton::node(uint32_t pos, uint32_t parent) {
  const uint64_t key = (static_cast<uint64_t>(pos) << 32) | parent;
  const auto it = node_ids_.find(key);
  if (it != node_ids_.end()) return it->second;
  if (nodes_.size() >= kMaxStackNodes) throw GrammarError("the grammar needs too many parse stacks");
  const auto id = static_cast<uint32_t>(nodes_.size());
  nodes_.push_back({pos, parent});
  node_ids_.emplace(key, id);
  return id;
}

uint32_t Automaton::continuation(uint32_t pos, uint32_t parent) {
  return grammar_.symbols[pos].kind == Symbol::Kind::End ? parent : node(pos, parent);
}

// Expands rule references on top of `start` until every stack has a terminal on top (or is empty), adding
// those stacks to `out`. Nodes are hash-consed, so a node seen twice expands to the same stacks: skip it.
void Automaton::resolve(uint32_t start, std::vector<uint32_t>& out) {
  if (++seen_epoch_ == 0) {
    std::fill(seen_.begin(), seen_.end(), 0);
    seen_epoch_ = 1;
  }
  worklist_.clear();
  worklist_.push_back(start);
  while (!worklist_.empty()) {
    const uint32_t n = worklist_.back();
    worklist_.pop_back();
    if (seen_.size() <= n) seen_.resize(std::max<size_t>(n + 1, seen_.size() * 2), 0);
    if (seen_[n] == seen_epoch_) continue;
    seen_[n] = seen_epoch_;
    if (n == 0) {
      out.push_back(0);
      continue;
    }
    const Node nd = nodes_[n];
    const Symbol sym = grammar_.symbols[nd.pos];
    if (sym.kind == Symbol::Kind::Terminal) {
      out.push_back(n);
      continue;
    }
    const uint32_t cont = continuation(nd.pos + 1, nd.parent);
    for (uint32_t alt : grammar_.rules[sym.index].alternatives) worklist_.push_back(continuation(alt, cont));
  }
}

int32_t Automaton::intern(std::vector<uint32_t> set) {
  const auto it = state_ids_.find(set);
  if (it != state_ids_.end()) return it->second;
  if (sets_.size() >= kMaxStates) throw GrammarError("the grammar needs too many matcher states");
  const auto id = static_cast<int32_t>(sets_.size());
  state_ids_.emplace(set, id);
  sets_.push_back(std::move(set));
  transitions_.resize(sets_.size() * n_classes_, -1);
  if (id == kDead) std::fill(transitions_.begin(), transitions_.end(), kDead);
  return id;
}

int32_t Automaton::compute(int32_t state, uint8_t cls) {
  const size_t byte = class_byte_[cls];
  std::vector<uint32_t> next;
  // resolve() grows nodes_ but never sets_, so this reference stays valid until intern() below.
  for (uint32_t n : sets_[static_cast<size_t>(state)]) {
    if (n == 0) continue;
    const Node nd = nodes_[n];
    if (!grammar_.sets[grammar_.symbols[nd.pos].index][byte]) continue;
    resolve(continuation(nd.pos + 1, nd.parent), next);
  }
  std::sort(next.begin(), next.end());
  next.erase(std::unique(next.begin(), next.end()), next.end());
  const int32_t to = intern(std::move(next));
  transitions_[static_cast<size_t>(state) * n_classes_ + cls] = to;
  return to;
}

}  // namespace pensieve::grammar
