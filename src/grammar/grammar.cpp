#include "grammar/grammar.h"

#include <algorithm>

#include "grammar/grammar_error.h"

namespace pensieve::grammar {

uint32_t GrammarBuilder::rule(std::string_view name) {
  const auto it = by_name_.find(std::string(name));
  if (it != by_name_.end()) return it->second;
  const auto id = static_cast<uint32_t>(g_.rules.size());
  g_.rules.push_back({std::string(name), {}});
  defined_.push_back(false);
  by_name_.emplace(std::string(name), id);
  return id;
}

uint32_t GrammarBuilder::fresh_rule(std::string_view base) {
  for (size_t n = g_.rules.size();; ++n) {
    std::string name = std::string(base) + "-" + std::to_string(n);
    if (!by_name_.contains(name)) return rule(name);
  }
}

void GrammarBuilder::add_alternative(uint32_t rule, const std::vector<Symbol>& symbols) {
  n_symbols_ += symbols.size() + 1;
  if (n_symbols_ > kMaxSymbols) throw GrammarError("the grammar is too large (over 1,000,000 symbols)");
  defined_[rule] = true;
  alternatives_.push_back(symbols);
  alternative_rule_.push_back(rule);
}

Symbol GrammarBuilder::terminal(const ByteSet& set) {
  const std::string key = set.to_string();
  auto [it, added] = set_ids_.emplace(key, static_cast<uint32_t>(g_.sets.size()));
  if (added) g_.sets.push_back(set);
  return {Symbol::Kind::Terminal, it->second};
}

namespace {

// Strongly connected components (iterative Tarjan) of a graph given as adjacency lists.
std::vector<uint32_t> components(const std::vector<std::vector<uint32_t>>& edges) {
  const size_t n = edges.size();
  constexpr uint32_t kUnseen = UINT32_MAX;
  std::vector<uint32_t> index(n, kUnseen), low(n, 0), comp(n, kUnseen);
  std::vector<bool> on_stack(n, false);
  std::vector<uint32_t> stack;
  std::vector<std::pair<uint32_t, size_t>> calls;  // (vertex, next edge)
  uint32_t counter = 0, n_comp = 0;
  for (uint32_t start = 0; start < n; ++start) {
    if (index[start] != kUnseen) continue;
    calls.push_back({start, 0});
    index[start] = low[start] = counter++;
    stack.push_back(start);
    on_stack[start] = true;
    while (!calls.empty()) {
      auto& [v, next] = calls.back();
      if (next < edges[v].size()) {
        const uint32_t w = edges[v][next++];
        if (index[w] == kUnseen) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = true;
          calls.push_back({w, 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      const uint32_t done = v;
      calls.pop_back();
      if (!calls.empty()) low[calls.back().first] = std::min(low[calls.back().first], low[done]);
      if (low[done] == index[done]) {
        uint32_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          comp[w] = n_comp;
        } while (w != done);
        ++n_comp;
      }
    }
  }
  return comp;
}

}  // namespace

Grammar GrammarBuilder::finish(std::string_view root_name) {
  const auto root_it = by_name_.find(std::string(root_name));
  if (root_it == by_name_.end() || !defined_[root_it->second]) {
    throw GrammarError("the grammar has no rule '" + std::string(root_name) + "'", "root");
  }
  for (size_t r = 0; r < g_.rules.size(); ++r) {
    if (!defined_[r]) throw GrammarError("rule '" + g_.rules[r].name + "' is used but never defined");
  }
  const size_t n_rules = g_.rules.size(), n_alts = alternatives_.size();

  // Rules that derive something, found with a worklist (linear in the grammar's size, whatever the order of
  // its rules): an alternative holds once every rule it uses holds. For `productive` every alternative counts
  // and terminals always hold; for `nullable` only kept alternatives made of rule references alone count.
  std::vector<std::vector<uint32_t>> uses(n_rules);  // rule -> alternatives using it, once per use
  for (size_t a = 0; a < n_alts; ++a) {
    for (const Symbol& sym : alternatives_[a]) {
      if (sym.kind == Symbol::Kind::Rule) uses[sym.index].push_back(static_cast<uint32_t>(a));
    }
  }
  const auto derive = [&](const std::vector<bool>& counts) {
    std::vector<bool> holds(n_rules, false);
    std::vector<uint32_t> pending(n_alts, 0), worklist;
    const auto alt_holds = [&](size_t a) {
      const uint32_t r = alternative_rule_[a];
      if (!holds[r]) {
        holds[r] = true;
        worklist.push_back(r);
      }
    };
    for (size_t a = 0; a < n_alts; ++a) {
      if (!counts[a]) continue;
      for (const Symbol& sym : alternatives_[a]) pending[a] += sym.kind == Symbol::Kind::Rule;
      if (pending[a] == 0) alt_holds(a);
    }
    while (!worklist.empty()) {
      const uint32_t r = worklist.back();
      worklist.pop_back();
      for (uint32_t a : uses[r]) {
        if (counts[a] && --pending[a] == 0) alt_holds(a);
      }
    }
    return holds;
  };

  // Productive rules: those that can derive some byte string. Alternatives using any other rule are dropped,
  // so that every stack the matcher keeps alive can still reach the end of the grammar.
  const std::vector<bool> productive = derive(std::vector<bool>(n_alts, true));
  if (!productive[root_it->second]) {
    throw GrammarError("the grammar can never be satisfied (rule '" + std::string(root_name) + "' never ends)");
  }
  std::vector<bool> alt_ok(n_alts), only_rules(n_alts);
  for (size_t a = 0; a < n_alts; ++a) {
    const auto& syms = alternatives_[a];
    alt_ok[a] = std::all_of(syms.begin(), syms.end(), [&](const Symbol& sym) {
      return sym.kind != Symbol::Kind::Rule || productive[sym.index];
    });
    only_rules[a] = alt_ok[a] && std::all_of(syms.begin(), syms.end(), [](const Symbol& sym) {
      return sym.kind == Symbol::Kind::Rule;
    });
  }
  const std::vector<bool> nullable = derive(only_rules);

  // Left recursion: A reaches A again before consuming a byte. Only a cycle through a reference that is not the
  // last of its alternative grows the matcher's stack; tail references just loop and are fine.
  std::vector<std::vector<uint32_t>> left(n_rules);
  std::vector<std::pair<uint32_t, uint32_t>> growing;
  for (size_t a = 0; a < n_alts; ++a) {
    if (!alt_ok[a]) continue;
    const auto& syms = alternatives_[a];
    const uint32_t from = alternative_rule_[a];
    for (size_t i = 0; i < syms.size(); ++i) {
      if (syms[i].kind != Symbol::Kind::Rule) break;
      left[from].push_back(syms[i].index);
      if (i + 1 < syms.size()) growing.push_back({from, syms[i].index});
      if (!nullable[syms[i].index]) break;
    }
  }
  const auto comp = components(left);
  for (const auto& [from, to] : growing) {
    if (comp[from] == comp[to]) {
      throw GrammarError("rule '" + g_.rules[from].name + "' is left-recursive; write the repetition on the right");
    }
  }

  g_.symbols.reserve(n_symbols_);
  for (size_t a = 0; a < n_alts; ++a) {
    if (!alt_ok[a]) continue;
    g_.rules[alternative_rule_[a]].alternatives.push_back(static_cast<uint32_t>(g_.symbols.size()));
    g_.symbols.insert(g_.symbols.end(), alternatives_[a].begin(), alternatives_[a].end());
    g_.symbols.push_back({Symbol::Kind::End, 0});
  }
  g_.root = root_it->second;
  return std::move(g_);
}

}  // namespace pensieve::grammar
