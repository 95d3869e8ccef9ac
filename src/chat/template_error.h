#pragma once
// The one exception type the chat-template interpreter throws, whatever went wrong.
#include <stdexcept>
#include <string>

namespace pensieve::chat {

class TemplateError : public std::runtime_error {
 public:
  enum class Kind {
    Syntax,   // the template source does not parse
    Runtime,  // evaluation failed: undefined access, a type error, an unknown filter, ...
    Raised,   // the template itself called raise_exception(message)
  };

  TemplateError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  Kind kind() const { return kind_; }
  // True when the template chose to fail; what() is then exactly the template's own message.
  bool raised_by_template() const { return kind_ == Kind::Raised; }

 private:
  Kind kind_;
};

}  // namespace pensieve::chat
