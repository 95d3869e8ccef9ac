#pragma once
// A grammar or schema that cannot be compiled. `keyword` names the JSON Schema keyword (or GBNF construct) at
// fault so that the API layer can answer a 400 that tells the client what to change.
#include <stdexcept>
#include <string>

namespace pensieve::grammar {

class GrammarError : public std::runtime_error {
 public:
  GrammarError(const std::string& message, std::string keyword = {})
      : std::runtime_error(message), keyword_(std::move(keyword)) {}
  const std::string& keyword() const { return keyword_; }

 private:
  std::string keyword_;
};

}  // namespace pensieve::grammar
