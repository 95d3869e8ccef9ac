#pragma once
// Unicode NFC normalization (HF "NFC" normalizer, used by Qwen tokenizers), through ICU.
#include <string>
#include <string_view>

namespace pensieve::tokenizer {

// Returns true and leaves `out` untouched when `text` is already NFC; otherwise writes the NFC form to `out`.
// Text that is not valid UTF-8 is left as it is.
bool is_nfc_or_normalize(std::string_view text, std::string& out);

}  // namespace pensieve::tokenizer
